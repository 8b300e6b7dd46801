# Every role may do only what its part of the pipeline needs. The policies are
# decoded and compared statement by statement, so widening one fails here.
#
# The only statements allowed a "*" resource are the two AWS forces:
#   VpcNetworkInterfaces (functions, only in a VPC): Lambda's ENI actions;
#   LogDelivery (state machine): CloudWatch Logs' vended-log delivery actions.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip  = "tests/testdata/lambda.zip"
  environment = "dev"
}

run "policies" {
  command = apply

  # Wildcards.
  assert {
    condition = alltrue([
      for s in flatten([for p in concat(values(aws_iam_role_policy.function), [aws_iam_role_policy.state_machine, aws_iam_role_policy.scheduler]) : jsondecode(p.policy).Statement]) :
      s.Effect == "Allow" && (!contains(s.Resource, "*") || contains(["VpcNetworkInterfaces", "LogDelivery"], s.Sid))
    ])
    error_message = "a statement other than the documented exceptions has a \"*\" resource"
  }

  assert {
    condition = alltrue([
      for s in flatten([for p in concat(values(aws_iam_role_policy.function), [aws_iam_role_policy.state_machine, aws_iam_role_policy.scheduler]) : jsondecode(p.policy).Statement]) :
      alltrue([for a in s.Action : a != "*" && !endswith(a, ":*")])
    ])
    error_message = "a statement allows every action of a service"
  }

  assert {
    condition     = !anytrue([for s in jsondecode(aws_iam_role_policy.state_machine.policy).Statement : s.Sid == "LogDelivery" && anytrue([for a in s.Action : !startswith(a, "logs:")])])
    error_message = "the state machine's LogDelivery exception may hold only logs: actions"
  }

  assert {
    condition     = !anytrue([for p in values(aws_iam_role_policy.function) : anytrue([for s in jsondecode(p.policy).Statement : s.Sid == "VpcNetworkInterfaces"])])
    error_message = "functions outside a VPC must not get EC2 network-interface permissions"
  }

  # Each function reaches only its own lake prefixes.
  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.function["extract"].policy).Statement : s.Sid => [toset(s.Action), toset(s.Resource)] if startswith(s.Sid, "Lake")
      } == {
      LakeRead   = [toset(["s3:GetObject"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/raw/*", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/processed/*", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/load.json", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_raw.json", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_processed.json"])]
      LakeWrite  = [toset(["s3:PutObject", "s3:AbortMultipartUpload"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/raw/*", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/raw/*", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/extract.json", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_raw.json"])]
      LakeDelete = [toset(["s3:DeleteObject"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/raw/*"])]
      LakeList   = [toset(["s3:ListBucket"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2"])]
    }
    error_message = "extract's lake access: ${aws_iam_role_policy.function["extract"].policy}"
  }

  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.function["transform"].policy).Statement : s.Sid => [toset(s.Action), toset(s.Resource)] if startswith(s.Sid, "Lake")
      } == {
      LakeRead = [toset(["s3:GetObject"]), toset([
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/raw/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/raw/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/processed/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/processed/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/load.json",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_raw.json",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_processed.json",
      ])]
      LakeWrite  = [toset(["s3:PutObject", "s3:AbortMultipartUpload"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/processed/*", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/processed/*", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/rejects/*", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_processed.json"])]
      LakeDelete = [toset(["s3:DeleteObject"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/processed/*", "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/rejects/*"])]
      LakeList   = [toset(["s3:ListBucket"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2"])]
    }
    error_message = "transform's lake access: ${aws_iam_role_policy.function["transform"].policy}"
  }

  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.function["load"].policy).Statement : s.Sid => [toset(s.Action), toset(s.Resource)] if startswith(s.Sid, "Lake")
      } == {
      LakeRead = [toset(["s3:GetObject"]), toset([
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/processed/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/processed/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/rejects/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/raw/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/extract.json",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/load.json",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_raw.json",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_processed.json",
      ])]
      LakeWrite = [toset(["s3:PutObject", "s3:AbortMultipartUpload"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/load.json"])]
      LakeList  = [toset(["s3:ListBucket"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2"])]
    }
    error_message = "load's lake access (its own status the only write): ${aws_iam_role_policy.function["load"].policy}"
  }

  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.function["clean"].policy).Statement : s.Sid => [toset(s.Action), toset(s.Resource)] if startswith(s.Sid, "Lake")
      } == {
      LakeRead = [toset(["s3:GetObject"]), toset([
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/raw/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/processed/*",
      ])]
      LakeDelete = [toset(["s3:DeleteObject"]), toset([
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/raw/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/processed/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/rejects/*",
      ])]
      LakeList = [toset(["s3:ListBucket"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2"])]
    }
    error_message = "clean's lake access (read the manifests, delete data files, never write): ${aws_iam_role_policy.function["clean"].policy}"
  }

  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.function["verify"].policy).Statement : s.Sid => [toset(s.Action), toset(s.Resource)] if startswith(s.Sid, "Lake")
      } == {
      LakeRead = [toset(["s3:GetObject"]), toset([
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/raw/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/raw/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/processed/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/extract.json",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_raw.json",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_processed.json",
      ])]
      LakeList = [toset(["s3:ListBucket"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2"])]
    }
    error_message = "verify's lake access (read what extraction took, write nothing): ${aws_iam_role_policy.function["verify"].policy}"
  }

  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.function["publish"].policy).Statement : s.Sid => [toset(s.Action), toset(s.Resource)] if startswith(s.Sid, "Lake")
      } == {
      LakeRead = [toset(["s3:GetObject"]), toset([
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/iceberg/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/manifests/processed/*",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_raw.json",
        "arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/status/latest_processed.json",
      ])]
      LakeWrite  = [toset(["s3:PutObject", "s3:AbortMultipartUpload"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/iceberg/*"])]
      LakeDelete = [toset(["s3:DeleteObject"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2/lake/iceberg/*"])]
      LakeList   = [toset(["s3:ListBucket"]), toset(["arn:aws:s3:::tote-dev-lake-123456789012-eu-west-2"])]
    }
    error_message = "publish's lake access (the Iceberg files, and the processed manifests to read): ${aws_iam_role_policy.function["publish"].policy}"
  }

  assert {
    condition = {
      for stage, p in aws_iam_role_policy.function : stage => [for s in jsondecode(p.policy).Statement : [s.Action, s.Resource] if strcontains(jsonencode(s.Action), "glue:")]
      } == {
      extract   = []
      transform = []
      load      = []
      clean     = []
      verify    = []
      publish = [[
        ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"],
        [
          "arn:aws:glue:eu-west-2:123456789012:catalog",
          "arn:aws:glue:eu-west-2:123456789012:database/tote_dev",
          "arn:aws:glue:eu-west-2:123456789012:table/tote_dev/*",
        ],
      ]]
    }
    error_message = "only publish reaches Glue, and only the environment's database: ${aws_iam_role_policy.function["publish"].policy}"
  }

  assert {
    condition = {
      for stage, p in aws_iam_role_policy.function : stage => toset(one([for s in jsondecode(p.policy).Statement : s.Condition.StringLike["s3:prefix"] if s.Sid == "LakeList"]))
      } == {
      extract   = toset(["lake/", "lake/raw/*", "lake/manifests/raw/*", "lake/manifests/processed/*"])
      transform = toset(["lake/", "lake/raw/*", "lake/manifests/raw/*", "lake/processed/*", "lake/manifests/processed/*", "lake/rejects/*"])
      load      = toset(["lake/", "lake/processed/*", "lake/manifests/processed/*", "lake/rejects/*", "lake/manifests/raw/*"])
      clean     = toset(["lake/", "lake/raw/*", "lake/processed/*", "lake/rejects/*", "lake/manifests/raw/*", "lake/manifests/processed/*"])
      verify    = toset(["lake/", "lake/raw/*", "lake/manifests/raw/*", "lake/manifests/processed/*"])
      publish   = toset(["lake/", "lake/iceberg/*", "lake/manifests/processed/*"])
    }
    error_message = "each function may list the lake root (lake.Open lists one key there) and the prefixes it reads or writes, not the status objects, nothing else: ${jsonencode({ for stage, p in aws_iam_role_policy.function : stage => [for s in jsondecode(p.policy).Statement : s.Condition if s.Sid == "LakeList"] })}"
  }

  assert {
    condition = alltrue([for p in values(aws_iam_role_policy.function) : alltrue([
      for s in jsondecode(p.policy).Statement : alltrue([for a in s.Action : !startswith(a, "s3:") || startswith(s.Sid, "Lake")])
    ])])
    error_message = "S3 actions may appear only in the Lake* statements checked above"
  }

  # Each function reads only its own secret and writes only its own logs.
  assert {
    condition = {
      for stage, p in aws_iam_role_policy.function : stage => toset(flatten([
        for s in jsondecode(p.policy).Statement : s.Resource if anytrue([for a in s.Action : startswith(a, "secretsmanager:")])
      ]))
      } == {
      extract   = toset(["arn:aws:secretsmanager:eu-west-2:123456789012:secret:tote/dev/source-url-AbCdEf"])
      transform = toset([])
      load      = toset(["arn:aws:secretsmanager:eu-west-2:123456789012:secret:tote/dev/warehouse-url-GhIjKl"])
      clean     = toset([])
      verify    = toset(["arn:aws:secretsmanager:eu-west-2:123456789012:secret:tote/dev/source-url-AbCdEf", "arn:aws:secretsmanager:eu-west-2:123456789012:secret:tote/dev/warehouse-url-GhIjKl"])
      publish   = toset(["arn:aws:secretsmanager:eu-west-2:123456789012:secret:tote/dev/warehouse-url-GhIjKl"])
    }
    error_message = "extract may read only the source secret, load and publish only the warehouse secret, verify both, transform and clean none"
  }

  assert {
    condition = alltrue([for p in values(aws_iam_role_policy.function) : alltrue([
      for s in jsondecode(p.policy).Statement : alltrue([for a in s.Action : !startswith(a, "secretsmanager:") || a == "secretsmanager:GetSecretValue"])
    ])])
    error_message = "functions may only read secrets (GetSecretValue)"
  }

  assert {
    condition = {
      for stage, p in aws_iam_role_policy.function : stage => toset(flatten([
        for s in jsondecode(p.policy).Statement : s.Resource if anytrue([for a in s.Action : startswith(a, "logs:")])
      ]))
      } == {
      for stage in ["extract", "transform", "load", "publish", "clean", "verify"] : stage => toset(["arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/tote-dev-${stage}:*"])
    }
    error_message = "each function may write only to its own log group"
  }

  assert {
    condition = {
      for stage, p in aws_iam_role_policy.function : stage => [for s in jsondecode(p.policy).Statement : [s.Action, s.Resource] if strcontains(jsonencode(s.Action), "sns:")]
      } == {
      extract   = []
      transform = [[["sns:Publish"], ["arn:aws:sns:eu-west-2:123456789012:tote-dev-alerts"]]]
      load      = []
      clean     = []
      verify    = []
      publish   = []
    }
    error_message = "only the transform may publish, to the alert topic alone (its quarantine alert); the state machine publishes failures"
  }

  # The state machine and the scheduler.
  assert {
    condition = {
      for s in jsondecode(aws_iam_role_policy.state_machine.policy).Statement : s.Sid => [toset(s.Action), toset(s.Resource)] if s.Sid != "LogDelivery"
      } == {
      InvokeStages = [toset(["lambda:InvokeFunction"]), toset(flatten([
        for stage in ["extract", "transform", "load", "publish"] : [
          "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-${stage}",
          "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-${stage}:*",
        ]
      ]))]
      PublishAlerts = [toset(["sns:Publish"]), toset(["arn:aws:sns:eu-west-2:123456789012:tote-dev-alerts"])]
      WriteOwnLogs  = [toset(["logs:CreateLogStream", "logs:PutLogEvents"]), toset(["arn:aws:logs:eu-west-2:123456789012:log-group:/aws/vendedlogs/states/tote-dev-pipeline:*"])]
    }
    error_message = "the state machine may invoke the four stages' functions (not clean or verify), publish to the topic and write its own log group, nothing else: ${aws_iam_role_policy.state_machine.policy}"
  }

  assert {
    condition = [for s in jsondecode(aws_iam_role_policy.scheduler.policy).Statement : [s.Action, s.Resource]] == [
      [["states:StartExecution"], ["arn:aws:states:eu-west-2:123456789012:stateMachine:tote-dev-pipeline"]],
      [["lambda:InvokeFunction"], ["arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-clean", "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-verify", "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-publish"]],
    ]
    error_message = "the scheduler may only start the pipeline and invoke the clean, verify and (for maintenance) publish functions: ${aws_iam_role_policy.scheduler.policy}"
  }

  assert {
    condition = {
      for name, role in merge({ for stage, r in aws_iam_role.function : stage => r }, { state_machine = aws_iam_role.service["state-machine"], scheduler = aws_iam_role.service["scheduler"] }) :
      name => one(jsondecode(role.assume_role_policy).Statement).Principal.Service
      } == {
      extract       = "lambda.amazonaws.com"
      transform     = "lambda.amazonaws.com"
      load          = "lambda.amazonaws.com"
      clean         = "lambda.amazonaws.com"
      verify        = "lambda.amazonaws.com"
      publish       = "lambda.amazonaws.com"
      state_machine = "states.amazonaws.com"
      scheduler     = "scheduler.amazonaws.com"
    }
    error_message = "each role must be assumable only by its own service"
  }
}

run "in_vpc" {
  command = plan

  variables {
    subnet_ids         = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]
    security_group_ids = ["sg-0123456789abcdef0"]
  }

  assert {
    condition = alltrue([for f in aws_lambda_function.stage :
      f.vpc_config[0].subnet_ids == toset(["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]) &&
      f.vpc_config[0].security_group_ids == toset(["sg-0123456789abcdef0"])
    ])
    error_message = "every function must run in the given subnets and security groups"
  }

  assert {
    condition = alltrue([for p in values(aws_iam_role_policy.function) : length([
      for s in jsondecode(p.policy).Statement : s if s.Sid == "VpcNetworkInterfaces" && alltrue([for a in s.Action : startswith(a, "ec2:")])
    ]) == 1])
    error_message = "in a VPC every function needs exactly one VpcNetworkInterfaces statement, of ec2: actions only"
  }

  assert {
    condition = alltrue([
      for s in flatten([for p in values(aws_iam_role_policy.function) : jsondecode(p.policy).Statement]) :
      !contains(s.Resource, "*") || s.Sid == "VpcNetworkInterfaces"
    ])
    error_message = "the VPC exception must not widen any other statement"
  }
}

run "vpc_needs_security_groups" {
  command = plan

  variables {
    subnet_ids = ["subnet-0123456789abcdef0"]
  }

  expect_failures = [aws_lambda_function.stage]
}

run "kms" {
  command = plan

  variables {
    kms_key_arn = "arn:aws:kms:eu-west-2:123456789012:key/11111111-2222-3333-4444-555555555555"
  }

  assert {
    condition = alltrue([for r in aws_s3_bucket_server_side_encryption_configuration.lake.rule :
      r.apply_server_side_encryption_by_default[0].sse_algorithm == "aws:kms" && r.bucket_key_enabled
    ])
    error_message = "with a KMS key the lake must use SSE-KMS with a bucket key"
  }

  assert {
    condition = {
      for stage, p in aws_iam_role_policy.function : stage => [for s in jsondecode(p.policy).Statement : s.Resource if s.Sid == "LakeKey"]
      } == {
      for stage in ["extract", "transform", "load", "publish", "clean", "verify"] : stage => [["arn:aws:kms:eu-west-2:123456789012:key/11111111-2222-3333-4444-555555555555"]]
    }
    error_message = "each function may use the lake's key, and only it"
  }
}
