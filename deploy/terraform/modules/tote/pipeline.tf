# The state machine that runs extract, transform, load and publish in order
# and alerts on failure, and the schedules that start it and the functions
# that run on schedules of their own (clean, verify, Iceberg maintenance).

resource "aws_cloudwatch_log_group" "state_machine" {
  # /aws/vendedlogs/ keeps CloudWatch's resource policy for log delivery short.
  name              = "/aws/vendedlogs/states/${local.prefix}-pipeline"
  retention_in_days = var.log_retention_days

  tags = local.tags
}

# The roles that Step Functions and EventBridge Scheduler assume, by the
# last part of their names; their policies follow below.
resource "aws_iam_role" "service" {
  for_each = {
    state-machine = { service = "states.amazonaws.com", description = "The ${local.prefix} pipeline state machine." }
    scheduler     = { service = "scheduler.amazonaws.com", description = "Starts the ${local.prefix} pipeline on its schedule." }
  }

  name                 = "${local.prefix}-${each.key}"
  description          = each.value.description
  permissions_boundary = var.permissions_boundary_arn
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = each.value.service }
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
      local.publish_alerts_statement,
      # In AWS's documented policy for Step Functions logging; scoped here
      # to the state machine's own log group.
      local.write_own_logs_statements["state_machine"],
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
  role   = aws_iam_role.service["state-machine"].id
  policy = jsonencode(local.state_machine_policy)
}

resource "aws_sfn_state_machine" "pipeline" {
  name     = "${local.prefix}-pipeline"
  type     = "STANDARD"
  role_arn = aws_iam_role.service["state-machine"].arn

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
  role   = aws_iam_role.service["scheduler"].id
  policy = jsonencode(local.scheduler_policy)
}

# The schedules, by the last part of their names: the pipeline's, and the
# functions that run on schedules of their own, each with the scheduler's
# role. By default a function is invoked with the trigger schedule, any time
# in the hour, and retried for an hour.
locals {
  schedule_defaults = {
    window_minutes    = 60
    trigger           = "schedule"
    event_age_seconds = 3600
  }

  schedules = merge(
    {
      # Exactly on time. A start that fails is not worth retrying for long:
      # the next tick does the same work, and late starts would only pile
      # up behind it.
      pipeline = merge(local.schedule_defaults, {
        description       = "Starts a ${local.prefix} pipeline run."
        expression        = var.schedule
        target_arn        = aws_sfn_state_machine.pipeline.arn
        window_minutes    = null
        event_age_seconds = 60
      })
      # The lake's upkeep: the clean function deletes the files of batches
      # that failed invocations left uncommitted (a function stopped at its
      # timeout, a lost commit race), which nothing else would, once older
      # than its grace period (TOTE_CLEAN_GRACE, 1h: longer than any
      # invocation). S3 writes no temporary files; the lifecycle rule in
      # lake.tf aborts incomplete uploads.
      clean = merge(local.schedule_defaults, {
        description = "Deletes the ${local.prefix} lake's uncommitted files."
        expression  = var.clean_schedule
        target_arn  = aws_lambda_function.stage["clean"].arn
      })
      # The warehouse compared with the source (tote verify), as tote
      # serve's --verify-every: the verify function publishes Differences,
      # which the verify alarms in alarms.tf watch. It takes the warehouse's
      # run lock, so it never runs across a load; if a load holds it, the
      # invocation fails as RunInProgress and Lambda retries the
      # asynchronous invocation (twice, minutes apart).
      verify = merge(local.schedule_defaults, {
        description    = "Compares the ${local.prefix} warehouse with the source."
        expression     = var.verify_schedule
        target_arn     = aws_lambda_function.stage["verify"].arn
        window_minutes = 15
      })
    },
    # Iceberg maintenance: each run's publish adds small files and a
    # snapshot per table; once a day the publish function, invoked with the
    # trigger maintain, compacts them and expires the snapshots older than
    # iceberg_retain_hours (and their files under iceberg/).
    var.iceberg_enabled ? {
      iceberg-maintain = merge(local.schedule_defaults, {
        description = "Compacts the ${local.prefix} Iceberg tables and expires their old snapshots."
        expression  = var.iceberg_maintain_schedule
        target_arn  = aws_lambda_function.stage["publish"].arn
        trigger     = "maintain"
      })
    } : {},
  )
}

resource "aws_scheduler_schedule" "schedule" {
  for_each = local.schedules

  name        = "${local.prefix}-${each.key}"
  description = each.value.description

  schedule_expression = each.value.expression
  state               = var.schedule_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode                      = each.value.window_minutes == null ? "OFF" : "FLEXIBLE"
    maximum_window_in_minutes = each.value.window_minutes
  }

  target {
    arn      = each.value.target_arn
    role_arn = aws_iam_role.service["scheduler"].arn
    input    = jsonencode({ trigger = each.value.trigger })

    retry_policy {
      maximum_event_age_in_seconds = each.value.event_age_seconds
      maximum_retry_attempts       = 2
    }
  }
}
