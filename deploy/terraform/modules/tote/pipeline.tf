# The state machine that runs extract, transform and load in order and alerts
# on failure, and the schedule that starts it.

resource "aws_cloudwatch_log_group" "state_machine" {
  # /aws/vendedlogs/ keeps CloudWatch's resource policy for log delivery short.
  name              = "/aws/vendedlogs/states/${local.prefix}-pipeline"
  retention_in_days = var.log_retention_days

  tags = local.tags
}

resource "aws_iam_role" "state_machine" {
  name                 = "${local.prefix}-state-machine"
  description          = "The ${local.prefix} pipeline state machine."
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "states.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = local.tags
}

locals {
  state_machine_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid    = "InvokeStages"
        Effect = "Allow"
        Action = ["lambda:InvokeFunction"]
        # Qualified ARNs (versions, aliases) too, should the definition use them.
        Resource = flatten([for stage in local.stages : [aws_lambda_function.stage[stage].arn, "${aws_lambda_function.stage[stage].arn}:*"]])
      },
      {
        Sid      = "PublishAlerts"
        Effect   = "Allow"
        Action   = ["sns:Publish"]
        Resource = [aws_sns_topic.alerts.arn]
      },
      {
        # In AWS's documented policy for Step Functions logging; scoped here
        # to the state machine's own log group.
        Sid      = "WriteOwnLogs"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = ["${aws_cloudwatch_log_group.state_machine.arn}:*"]
      },
      {
        # The second exception to "no * resource": Step Functions delivers its
        # logs through CloudWatch Logs' vended-log API, whose actions AWS only
        # accepts on all resources.
        Sid    = "LogDelivery"
        Effect = "Allow"
        Action = [
          "logs:CreateLogDelivery",
          "logs:GetLogDelivery",
          "logs:UpdateLogDelivery",
          "logs:DeleteLogDelivery",
          "logs:ListLogDeliveries",
          "logs:PutResourcePolicy",
          "logs:DescribeResourcePolicies",
          "logs:DescribeLogGroups",
        ]
        Resource = ["*"]
      },
    ]
  }
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "${local.prefix}-state-machine-access"
  role   = aws_iam_role.state_machine.id
  policy = jsonencode(local.state_machine_policy)
}

resource "aws_sfn_state_machine" "pipeline" {
  name     = "${local.prefix}-pipeline"
  type     = "STANDARD"
  role_arn = aws_iam_role.state_machine.arn

  # The definition is written by hand as ASL JSON; these are all it is given.
  definition = templatefile("${path.module}/statemachine.asl.json", {
    extract_function_arn   = aws_lambda_function.stage["extract"].arn
    transform_function_arn = aws_lambda_function.stage["transform"].arn
    load_function_arn      = aws_lambda_function.stage["load"].arn
    publish_function_arn   = aws_lambda_function.stage["publish"].arn
    publish_after          = var.iceberg_enabled ? "load" : "off"
    alert_topic_arn        = aws_sns_topic.alerts.arn
    environment            = var.environment
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.state_machine.arn}:*"
    level                  = var.state_machine_log_level
    include_execution_data = false # states' input and output stay out of the logs
  }

  # Step Functions checks at creation that the role may deliver logs.
  depends_on = [aws_iam_role_policy.state_machine]

  tags = local.tags
}

resource "aws_iam_role" "scheduler" {
  name                 = "${local.prefix}-scheduler"
  description          = "Starts the ${local.prefix} pipeline on its schedule."
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account_id } }
    }]
  })

  tags = local.tags
}

locals {
  scheduler_policy = {
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "StartPipeline"
        Effect   = "Allow"
        Action   = ["states:StartExecution"]
        Resource = [aws_sfn_state_machine.pipeline.arn]
      },
      {
        Sid      = "InvokeOnSchedules"
        Effect   = "Allow"
        Action   = ["lambda:InvokeFunction"]
        Resource = concat([aws_lambda_function.stage["clean"].arn, aws_lambda_function.stage["verify"].arn], var.iceberg_enabled ? [aws_lambda_function.stage["publish"].arn] : [])
      },
    ]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "${local.prefix}-scheduler-access"
  role   = aws_iam_role.scheduler.id
  policy = jsonencode(local.scheduler_policy)
}

resource "aws_scheduler_schedule" "pipeline" {
  name        = "${local.prefix}-pipeline"
  description = "Starts a ${local.prefix} pipeline run."

  schedule_expression = var.schedule
  state               = var.schedule_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_sfn_state_machine.pipeline.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ trigger = "schedule" })

    # A start that fails is not worth retrying for long: the next tick does
    # the same work, and late starts would only pile up behind it.
    retry_policy {
      maximum_event_age_in_seconds = 60
      maximum_retry_attempts       = 2
    }
  }
}

# The lake's upkeep: the clean function deletes the files of batches that
# failed invocations left uncommitted (a function stopped at its timeout, a
# lost commit race), which nothing else would, once older than its grace
# period (TOTE_CLEAN_GRACE, 1h: longer than any invocation). S3 writes no
# temporary files; the lifecycle rule in lake.tf aborts incomplete uploads.
resource "aws_scheduler_schedule" "clean" {
  name        = "${local.prefix}-clean"
  description = "Deletes the ${local.prefix} lake's uncommitted files."

  schedule_expression = var.clean_schedule
  state               = var.schedule_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode                      = "FLEXIBLE"
    maximum_window_in_minutes = 60 # any time in the hour will do
  }

  target {
    arn      = aws_lambda_function.stage["clean"].arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ trigger = "schedule" })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 2
    }
  }
}

# The warehouse compared with the source (tote verify) on a schedule of its
# own, as tote serve's --verify-every: the verify function publishes
# Differences, which the verify alarms in alarms.tf watch. It takes the
# warehouse's run lock, so it never runs across a load; if a load holds it,
# the invocation fails as RunInProgress and Lambda retries the asynchronous
# invocation (twice, minutes apart).
resource "aws_scheduler_schedule" "verify" {
  name        = "${local.prefix}-verify"
  description = "Compares the ${local.prefix} warehouse with the source."

  schedule_expression = var.verify_schedule
  state               = var.schedule_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode                      = "FLEXIBLE"
    maximum_window_in_minutes = 15
  }

  target {
    arn      = aws_lambda_function.stage["verify"].arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ trigger = "schedule" })

    retry_policy {
      maximum_event_age_in_seconds = 3600
      maximum_retry_attempts       = 2
    }
  }
}
