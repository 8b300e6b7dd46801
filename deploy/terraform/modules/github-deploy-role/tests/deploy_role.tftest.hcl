# The deploy roles, against a mock AWS provider: who may assume them, and
# that each reaches its own environment's resources only, never a secret's
# value, and cannot grant more than its boundary.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  github_repository = "terrifictotes/tote"
  state_bucket      = "tote-tfstate-123456789012"
}

run "roles" {
  command = apply

  assert {
    condition     = keys(aws_iam_role.deploy) == ["dev", "prod"] && aws_iam_role.deploy["prod"].name == "tote-deploy-prod"
    error_message = "want one role per environment, tote-deploy-<environment>: ${jsonencode(keys(aws_iam_role.deploy))}"
  }

  assert {
    condition     = alltrue([for e, r in aws_iam_role.deploy : !startswith(r.name, "tote-${e}-")])
    error_message = "a deploy role must be named outside the prefix it may manage, or it could edit itself"
  }

  assert {
    condition = {
      for e, r in aws_iam_role.deploy : e => jsondecode(r.assume_role_policy).Statement
      } == {
      for e in ["dev", "prod"] : e => [{
        Sid       = "GitHubActionsEnvironment"
        Effect    = "Allow"
        Principal = { Federated = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com" }
        Action    = "sts:AssumeRoleWithWebIdentity"
        Condition = {
          StringEquals = {
            "token.actions.githubusercontent.com:aud" = "sts.amazonaws.com"
            "token.actions.githubusercontent.com:sub" = "repo:terrifictotes/tote:environment:${e}"
          }
        }
      }]
    }
    error_message = "only this repository's jobs in the GitHub environment of the same name may assume a role: ${jsonencode({ for e, r in aws_iam_role.deploy : e => jsondecode(r.assume_role_policy) })}"
  }

  assert {
    condition = (
      aws_iam_openid_connect_provider.github[0].url == "https://token.actions.githubusercontent.com" &&
      aws_iam_openid_connect_provider.github[0].client_id_list == toset(["sts.amazonaws.com"])
    )
    error_message = "GitHub's OIDC provider, for the STS audience"
  }

  # Least privilege, statement by statement.
  assert {
    condition = alltrue(flatten([for e, p in aws_iam_role_policy.deploy : [
      for s in jsondecode(p.policy).Statement : [
        for a in flatten([s.Action]) : a != "*" && !endswith(a, ":*")
      ]
    ]]))
    error_message = "no statement may allow all of a service's actions"
  }

  assert {
    condition = alltrue(flatten([for e, p in aws_iam_role_policy.deploy : [
      for s in jsondecode(p.policy).Statement : contains(["DescribeLogGroups", "StateMachineLogDelivery"], s.Sid) || s.Effect == "Deny" if contains(flatten([s.Resource]), "*")
    ]]))
    error_message = "the only Allows on * are DescribeLogGroups and the state machine's log delivery (AWS authorizes them on nothing narrower)"
  }

  assert {
    condition = alltrue(flatten([for e, p in aws_iam_role_policy.deploy : [
      for s in jsondecode(p.policy).Statement : [
        for r in flatten([s.Resource]) : r == "*" || strcontains(r, "tote-${e}-") || strcontains(r, "tote/${e}") || strcontains(r, "tote_${e}") || endswith(r, ":catalog") || endswith(r, ":workgroup/tote-${e}") || r == "arn:aws:s3:::tote-tfstate-123456789012"
      ] if s.Effect == "Allow"
    ]]))
    error_message = "every resource an environment's role may touch must be that environment's"
  }

  assert {
    condition     = !strcontains(aws_iam_role_policy.deploy["dev"].policy, "prod") && !strcontains(aws_iam_role_policy.deploy["prod"].policy, "dev")
    error_message = "one environment's role must not name another's resources"
  }

  assert {
    condition = alltrue([for e, p in aws_iam_role_policy.deploy :
      !strcontains(p.policy, "secretsmanager:GetSecretValue") && !strcontains(p.policy, "secretsmanager:PutSecretValue") && !strcontains(p.policy, "s3:GetObject\",\"s3:PutObject\",\"s3:DeleteObject\"],\"Resource\":[\"arn:aws:s3:::tote-")
    ])
    error_message = "a deploy role must never read or write a secret's value, nor a lake object"
  }

  assert {
    condition = {
      for e, p in aws_iam_role_policy.deploy : e => one([for s in jsondecode(p.policy).Statement : s.Resource if s.Sid == "StateObject"])
      } == {
      for e in ["dev", "prod"] : e => ["arn:aws:s3:::tote-tfstate-123456789012/tote/${e}.tfstate", "arn:aws:s3:::tote-tfstate-123456789012/tote/${e}.tfstate.tflock"]
    }
    error_message = "each role may use its environment's state key and lock only"
  }

  assert {
    condition = alltrue(flatten([for e, p in aws_iam_role_policy.deploy : [
      for s in jsondecode(p.policy).Statement :
      s.Condition.StringEquals["iam:PermissionsBoundary"] == "arn:aws:iam::123456789012:policy/tote-${e}-boundary"
      if s.Effect == "Allow" && length(setintersection(toset(flatten([s.Action])), toset(["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"]))) > 0
    ]]))
    error_message = "a role may be created or given a policy only with the environment's permissions boundary"
  }

  assert {
    condition = alltrue([for e, p in aws_iam_role_policy.deploy :
      one([for s in jsondecode(p.policy).Statement : s.Effect if s.Sid == "KeepTheBoundary"]) == "Deny" &&
      contains(one([for s in jsondecode(p.policy).Statement : s.Action if s.Sid == "KeepTheBoundary"]), "iam:DeleteRolePermissionsBoundary")
    ])
    error_message = "the boundary must not be removable"
  }

  assert {
    condition = alltrue([for e, p in aws_iam_role_policy.deploy :
      one([for s in jsondecode(p.policy).Statement : s.Condition.StringEquals["iam:PassedToService"] if s.Sid == "PassRolesToTheirServices"]) == ["lambda.amazonaws.com", "states.amazonaws.com", "scheduler.amazonaws.com"]
    ])
    error_message = "roles may be passed only to Lambda, Step Functions and EventBridge Scheduler"
  }

  assert {
    condition = (
      length([for s in jsondecode(aws_iam_role_policy.deploy["dev"].policy).Statement : s if s.Sid == "EmptyLakeOnDestroy"]) == 1 &&
      length([for s in jsondecode(aws_iam_role_policy.deploy["prod"].policy).Statement : s if s.Sid == "EmptyLakeOnDestroy"]) == 0
    )
    error_message = "only dev's role (force_destroy) may delete lake objects"
  }

  assert {
    condition     = alltrue([for p in aws_iam_role_policy.deploy : length(p.policy) < 10240])
    error_message = "an inline policy must stay under IAM's 10,240 characters"
  }

  # The boundary.
  assert {
    condition = alltrue(flatten([for e, p in aws_iam_policy.boundary : [
      for s in jsondecode(p.policy).Statement : [
        for r in flatten([s.Resource]) : r == "*" || strcontains(r, "tote-${e}-") || strcontains(r, "tote/${e}/") || strcontains(r, "tote_${e}") || endswith(r, ":catalog") || r == "arn:aws:kms:*:123456789012:key/*"
      ]
    ]]))
    error_message = "the boundary must reach only the environment's resources"
  }

  assert {
    condition = alltrue([for e, p in aws_iam_policy.boundary :
      p.name == "tote-${e}-boundary" && !strcontains(p.policy, "iam:") && !strcontains(p.policy, "\"*:")
    ])
    error_message = "the boundary grants no IAM action"
  }
}

run "existing_oidc_provider" {
  command = apply

  variables {
    create_oidc_provider = false
    environments         = ["staging"]
  }

  assert {
    condition = (
      length(aws_iam_openid_connect_provider.github) == 0 &&
      jsondecode(aws_iam_role.deploy["staging"].assume_role_policy).Statement[0].Principal.Federated == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
    )
    error_message = "without create_oidc_provider, trust the account's provider by its ARN"
  }
}

run "environment_names" {
  command = plan

  variables {
    environments = ["Prod"]
  }

  expect_failures = [var.environments]
}
