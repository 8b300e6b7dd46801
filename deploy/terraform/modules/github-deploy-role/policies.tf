# The three policies per environment, as jsonencode()d locals so that the
# tests can decode every statement (as in modules/tote).

locals {
  arn = {
    for e, v in local.envs : e => {
      lake      = "arn:${local.partition}:s3:::${v.prefix}-lake-*"
      functions = "arn:${local.partition}:lambda:*:${local.account_id}:function:${v.prefix}-*"
      roles     = "arn:${local.partition}:iam::${local.account_id}:role/${v.prefix}-*"
      log_groups = [
        "arn:${local.partition}:logs:*:${local.account_id}:log-group:/aws/lambda/${v.prefix}-*",
        "arn:${local.partition}:logs:*:${local.account_id}:log-group:/aws/vendedlogs/states/${v.prefix}-*",
      ]
      topics        = "arn:${local.partition}:sns:*:${local.account_id}:${v.prefix}-*"
      alarms        = "arn:${local.partition}:cloudwatch:*:${local.account_id}:alarm:${v.prefix}-*"
      state_machine = "arn:${local.partition}:states:*:${local.account_id}:stateMachine:${v.prefix}-*"
      executions    = "arn:${local.partition}:states:*:${local.account_id}:execution:${v.prefix}-*"
      schedules     = "arn:${local.partition}:scheduler:*:${local.account_id}:schedule/default/${v.prefix}-*"
      secrets       = "arn:${local.partition}:secretsmanager:*:${local.account_id}:secret:${var.name}/${e}/*"
      glue = [
        "arn:${local.partition}:glue:*:${local.account_id}:catalog",
        "arn:${local.partition}:glue:*:${local.account_id}:database/${v.glue_db}",
        "arn:${local.partition}:glue:*:${local.account_id}:table/${v.glue_db}/*",
      ]
      workgroup = "arn:${local.partition}:athena:*:${local.account_id}:workgroup/${v.prefix}"
    }
  }

  # Who may assume the role: a job of this repository running in the GitHub
  # environment of the same name. GitHub puts the environment in the
  # token's subject when the job has one, and applies the environment's
  # branch and tag rules and required reviewers before the job gets a token.
  trust_policies = {
    for e, v in local.envs : e => {
      Version = "2012-10-17"
      Statement = [{
        Sid       = "GitHubActionsEnvironment"
        Effect    = "Allow"
        Principal = { Federated = local.oidc_provider_arn }
        Action    = "sts:AssumeRoleWithWebIdentity"
        Condition = {
          StringEquals = {
            "${local.oidc_url}:aud" = "sts.amazonaws.com"
            "${local.oidc_url}:sub" = "repo:${var.github_repository}:environment:${e}"
          }
        }
      }]
    }
  }

  # What `terraform apply` of examples/<environment> does, on that
  # environment's resources only. Per service, the actions to create, read,
  # update, tag and delete what the tote module makes.
  deploy_policies = {
    for e, v in local.envs : e => {
      Version = "2012-10-17"
      Statement = concat(
        [
          {
            Sid      = "StateObject"
            Effect   = "Allow"
            Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
            Resource = ["arn:${local.partition}:s3:::${var.state_bucket}/${v.state}", "arn:${local.partition}:s3:::${var.state_bucket}/${v.state}.tflock"]
          },
          {
            Sid       = "StateList"
            Effect    = "Allow"
            Action    = ["s3:ListBucket"]
            Resource  = ["arn:${local.partition}:s3:::${var.state_bucket}"]
            Condition = { StringLike = { "s3:prefix" = ["${v.state}*"] } }
          },
          {
            # Bucket-level only: these actions do not reach objects.
            Sid    = "LakeBucket"
            Effect = "Allow"
            Action = [
              "s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:ListBucketVersions",
              "s3:GetBucket*", "s3:PutBucket*", "s3:DeleteBucketPolicy",
              "s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration",
              "s3:GetEncryptionConfiguration", "s3:PutEncryptionConfiguration",
              "s3:GetAccelerateConfiguration", "s3:GetReplicationConfiguration",
            ]
            Resource = [local.arn[e].lake]
          },
          {
            Sid    = "Functions"
            Effect = "Allow"
            Action = [
              "lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction*", "lambda:GetPolicy",
              "lambda:GetRuntimeManagementConfig", "lambda:ListVersionsByFunction", "lambda:ListTags",
              "lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration",
              "lambda:PutFunctionConcurrency", "lambda:DeleteFunctionConcurrency",
              "lambda:AddPermission", "lambda:RemovePermission", "lambda:TagResource", "lambda:UntagResource",
            ]
            Resource = [local.arn[e].functions]
          },
          {
            Sid    = "RolesRead"
            Effect = "Allow"
            Action = [
              "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
              "iam:ListInstanceProfilesForRole", "iam:DeleteRole", "iam:DeleteRolePolicy",
              "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:TagRole", "iam:UntagRole",
            ]
            Resource = [local.arn[e].roles]
          },
          {
            # A role the deploy makes, or whose policy it writes, carries the
            # environment's boundary: no policy it writes can reach further.
            Sid       = "RolesWriteWithinBoundary"
            Effect    = "Allow"
            Action    = ["iam:CreateRole", "iam:PutRolePolicy"]
            Resource  = [local.arn[e].roles]
            Condition = { StringEquals = { "iam:PermissionsBoundary" = v.boundary } }
          },
          {
            Sid       = "PassRolesToTheirServices"
            Effect    = "Allow"
            Action    = ["iam:PassRole"]
            Resource  = [local.arn[e].roles]
            Condition = { StringEquals = { "iam:PassedToService" = ["lambda.amazonaws.com", "states.amazonaws.com", "scheduler.amazonaws.com"] } }
          },
          {
            Sid      = "KeepTheBoundary"
            Effect   = "Deny"
            Action   = ["iam:DeleteRolePermissionsBoundary", "iam:PutRolePermissionsBoundary", "iam:AttachRolePolicy", "iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion"]
            Resource = ["*"]
          },
          {
            Sid    = "LogGroups"
            Effect = "Allow"
            Action = [
              "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
              "logs:TagResource", "logs:UntagResource", "logs:ListTagsForResource", "logs:TagLogGroup", "logs:UntagLogGroup", "logs:ListTagsLogGroup",
            ]
            Resource = flatten([for g in local.arn[e].log_groups : [g, "${g}:*"]])
          },
          {
            # Exception 1 to "no * resource": DescribeLogGroups is authorized
            # only on all log groups (it lists them by prefix).
            Sid      = "DescribeLogGroups"
            Effect   = "Allow"
            Action   = ["logs:DescribeLogGroups"]
            Resource = ["*"]
          },
          {
            # Exception 2: creating or updating a state machine that logs to
            # CloudWatch Logs sets up a vended log delivery, which AWS
            # authorizes (for the caller too) only on all resources.
            Sid    = "StateMachineLogDelivery"
            Effect = "Allow"
            Action = [
              "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
              "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
            ]
            Resource = ["*"]
          },
          {
            Sid    = "Alerts"
            Effect = "Allow"
            Action = [
              "sns:CreateTopic", "sns:DeleteTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes",
              "sns:Subscribe", "sns:Unsubscribe", "sns:GetSubscriptionAttributes", "sns:SetSubscriptionAttributes",
              "sns:TagResource", "sns:UntagResource", "sns:ListTagsForResource",
            ]
            Resource = [local.arn[e].topics, "${local.arn[e].topics}:*"]
          },
          {
            Sid    = "Alarms"
            Effect = "Allow"
            Action = [
              "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
              "cloudwatch:TagResource", "cloudwatch:UntagResource", "cloudwatch:ListTagsForResource",
            ]
            Resource = [local.arn[e].alarms]
          },
          {
            Sid    = "StateMachine"
            Effect = "Allow"
            Action = [
              "states:CreateStateMachine", "states:DeleteStateMachine", "states:DescribeStateMachine", "states:UpdateStateMachine",
              "states:ListStateMachineVersions", "states:TagResource", "states:UntagResource", "states:ListTagsForResource",
            ]
            Resource = [local.arn[e].state_machine]
          },
          {
            Sid      = "Schedules"
            Effect   = "Allow"
            Action   = ["scheduler:CreateSchedule", "scheduler:DeleteSchedule", "scheduler:GetSchedule", "scheduler:UpdateSchedule"]
            Resource = [local.arn[e].schedules]
          },
          {
            # The secrets themselves, never their values: no GetSecretValue,
            # no PutSecretValue.
            Sid    = "SecretsWithoutValues"
            Effect = "Allow"
            Action = [
              "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret",
              "secretsmanager:GetResourcePolicy", "secretsmanager:UpdateSecret",
              "secretsmanager:TagResource", "secretsmanager:UntagResource",
            ]
            Resource = [local.arn[e].secrets]
          },
          {
            # The Iceberg catalog's database; the tables in it are the
            # publish function's, but deleting the database deletes them.
            Sid    = "GlueDatabase"
            Effect = "Allow"
            Action = [
              "glue:CreateDatabase", "glue:DeleteDatabase", "glue:GetDatabase", "glue:UpdateDatabase",
              "glue:GetTables", "glue:DeleteTable", "glue:TagResource", "glue:UntagResource", "glue:GetTags",
            ]
            Resource = local.arn[e].glue
          },
          {
            Sid    = "AthenaWorkgroup"
            Effect = "Allow"
            Action = [
              "athena:CreateWorkGroup", "athena:DeleteWorkGroup", "athena:GetWorkGroup", "athena:UpdateWorkGroup",
              "athena:TagResource", "athena:UntagResource", "athena:ListTagsForResource",
              "athena:CreateNamedQuery", "athena:DeleteNamedQuery", "athena:GetNamedQuery",
            ]
            Resource = [local.arn[e].workgroup]
          },
        ],
        # force_destroy: `terraform destroy` empties the bucket first.
        contains(var.lake_force_destroy_environments, e) ? [{
          Sid      = "EmptyLakeOnDestroy"
          Effect   = "Allow"
          Action   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
          Resource = ["${local.arn[e].lake}/*"]
        }] : [],
      )
    }
  }

  # The most a role of the environment may do: what the tote module's
  # functions, state machine and scheduler do (its least_privilege tests
  # list it), on the environment's resources. The module's own policies are
  # narrower; this caps what any policy the deploy writes can grant.
  boundary_policies = {
    for e, v in local.envs : e => {
      Version = "2012-10-17"
      Statement = [
        {
          Sid      = "Lake"
          Effect   = "Allow"
          Action   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListBucket", "s3:GetBucketLocation"]
          Resource = [local.arn[e].lake, "${local.arn[e].lake}/*"]
        },
        {
          Sid      = "Secrets"
          Effect   = "Allow"
          Action   = ["secretsmanager:GetSecretValue"]
          Resource = [local.arn[e].secrets]
        },
        {
          Sid      = "Logs"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = [for g in local.arn[e].log_groups : "${g}:*"]
        },
        {
          Sid      = "Pipeline"
          Effect   = "Allow"
          Action   = ["lambda:InvokeFunction", "sns:Publish", "states:StartExecution", "states:DescribeExecution", "states:StopExecution"]
          Resource = [local.arn[e].functions, "${local.arn[e].functions}:*", local.arn[e].topics, local.arn[e].state_machine, local.arn[e].executions]
        },
        {
          Sid    = "Iceberg"
          Effect = "Allow"
          Action = [
            "glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
          ]
          Resource = local.arn[e].glue
        },
        {
          # What AWS authorizes only on "*": Step Functions' log delivery,
          # Lambda's network interfaces in a VPC, and SSE-KMS with a key
          # of the account.
          Sid    = "OnlyOnAll"
          Effect = "Allow"
          Action = [
            "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
            "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
            "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
          ]
          Resource = ["*"]
        },
        {
          Sid      = "LakeKey"
          Effect   = "Allow"
          Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource = ["arn:${local.partition}:kms:*:${local.account_id}:key/*"]
        },
      ]
    }
  }
}
