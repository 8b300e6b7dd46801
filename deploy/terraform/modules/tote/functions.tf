# The three stages, clean and verify as Lambda functions, all from one zip: the
# bootstrap runs the stage named by TOTE_STAGE. Each has its own role that reaches only its own
# lake prefixes, its own secret and its own log group.

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.functions

  # Lambda's default name: created here so that it has a retention and is
  # destroyed with the function.
  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days

  tags = local.tags
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name                 = local.function_names[each.key]
  description          = "The ${local.prefix} ${each.key} Lambda function."
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })

  tags = local.tags
}

locals {
  lake_object_arns = {
    for stage, access in local.lake_access : stage => {
      for verb, keys in access : verb => [for key in keys : "${local.bucket_arn}/${var.lake_prefix}/${key}"]
    }
  }

  s3_actions = {
    read   = ["s3:GetObject"]
    write  = ["s3:PutObject", "s3:AbortMultipartUpload"]
    delete = ["s3:DeleteObject"]
  }

  # Statements the state machine's policy has too: publishing to the alert
  # topic, and writing to a log group of its own (by its owner: a stage, or
  # the state machine).
  publish_alerts_statement = {
    Sid      = "PublishAlerts"
    Effect   = "Allow"
    Action   = ["sns:Publish"]
    Resource = [aws_sns_topic.alerts.arn]
  }
  write_own_logs_statements = {
    for owner, group in merge(aws_cloudwatch_log_group.function, { state_machine = aws_cloudwatch_log_group.state_machine }) : owner => {
      Sid      = "WriteOwnLogs"
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${group.arn}:*"]
    }
  }

  # Policies are jsonencode()d objects rather than aws_iam_policy_document data
  # sources so that the tests can decode and check them.
  function_policies = {
    for stage, fn in local.functions : stage => {
      Version = "2012-10-17"
      Statement = concat(
        [
          for verb, arns in local.lake_object_arns[stage] : {
            Sid      = "Lake${title(verb)}"
            Effect   = "Allow"
            Action   = local.s3_actions[verb]
            Resource = arns
          } if length(arns) > 0
        ],
        [{
          Sid      = "LakeList"
          Effect   = "Allow"
          Action   = ["s3:ListBucket"]
          Resource = [local.bucket_arn]
          # Opening the lake lists one key of its root (lake.Open's probe), so
          # the root itself is listable; below it, only the function's prefixes
          # (not the single status objects, which are read by name).
          Condition = {
            StringLike = {
              "s3:prefix" = concat(["${var.lake_prefix}/"], distinct(flatten([for keys in values(local.lake_access[stage]) : [for key in keys : "${var.lake_prefix}/${key}" if endswith(key, "/*")]])))
            }
          }
        }],
        var.kms_key_arn == null ? [] : [{
          Sid      = "LakeKey"
          Effect   = "Allow"
          Action   = ["kms:Decrypt", "kms:GenerateDataKey"]
          Resource = [var.kms_key_arn]
        }],
        length(fn.secrets) == 0 ? [] : [{
          Sid      = "ReadOwnSecret"
          Effect   = "Allow"
          Action   = ["secretsmanager:GetSecretValue"]
          Resource = [for secret in values(fn.secrets) : secret.arn]
        }],
        stage == "publish" && var.iceberg_enabled ? [{
          # The Iceberg catalog: read and commit the tables of the
          # environment's database (a commit is an UpdateTable), create
          # them on the first publish; nothing else in Glue.
          Sid      = "IcebergCatalog"
          Effect   = "Allow"
          Action   = ["glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"]
          Resource = local.glue_arns
        }] : [],
        fn.alerts ? [local.publish_alerts_statement] : [],
        [local.write_own_logs_statements[stage]],
        # The one exception to "no * resource": Lambda manages the functions'
        # network interfaces with these actions, and AWS documents that they
        # only work when allowed on all resources.
        local.in_vpc ? [{
          Sid    = "VpcNetworkInterfaces"
          Effect = "Allow"
          Action = [
            "ec2:CreateNetworkInterface",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeSubnets",
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
          ]
          Resource = ["*"]
        }] : [],
      )
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${local.function_names[each.key]}-access"
  role   = aws_iam_role.function[each.key].id
  policy = jsonencode(local.function_policies[each.key])
}

resource "aws_lambda_function" "stage" {
  for_each = local.functions

  function_name = local.function_names[each.key]
  description   = "tote ${each.key} stage"
  role          = aws_iam_role.function[each.key].arn

  filename         = var.lambda_zip
  source_code_hash = filebase64sha256(var.lambda_zip)
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [local.lambda_architecture]

  memory_size                    = local.function_sizes[each.key].memory_mb
  timeout                        = local.function_sizes[each.key].timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency

  environment {
    variables = merge(
      var.function_environment,
      {
        TOTE_STAGE         = each.key
        TOTE_ENVIRONMENT   = var.environment
        TOTE_LAKE_URL      = local.lake_url
        TOTE_LOG_FORMAT    = "json"
        TOTE_LAG_THRESHOLD = local.lag_threshold
      },
      { for env, secret in each.value.secrets : env => "secretsmanager://${secret.name}" },
      each.value.alerts ? { TOTE_ALERT_SNS_TOPIC = aws_sns_topic.alerts.arn } : {},
      each.key == "publish" ? { TOTE_ICEBERG_CATALOG = local.iceberg_catalog, TOTE_ICEBERG_RETAIN = "${var.iceberg_retain_hours}h" } : {},
    )
  }

  logging_config {
    log_format = "Text" # tote writes its own JSON lines (logs and EMF metrics)
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  dynamic "vpc_config" {
    for_each = local.in_vpc ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  lifecycle {
    precondition {
      condition     = !local.in_vpc || length(var.security_group_ids) > 0
      error_message = "security_group_ids must be set when subnet_ids is."
    }
  }

  # The log group must exist before Lambda creates its own without retention,
  # and the policy before the first invocation (and the VPC check at create).
  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.function]

  tags = local.tags
}
