# The module with its defaults, against a mock AWS provider: what an operator
# gets from `terraform apply` with nothing but a zip.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip  = "tests/testdata/lambda.zip"
  environment = "dev"
}

run "defaults" {
  command = apply

  # The lake bucket.
  assert {
    condition     = aws_s3_bucket.lake.bucket == "tote-dev-lake-123456789012-eu-west-2" && output.lake_url == "s3://tote-dev-lake-123456789012-eu-west-2/lake"
    error_message = "bucket ${aws_s3_bucket.lake.bucket}, lake URL ${output.lake_url}: want tote-lake-<account>-<region> and s3://<bucket>/lake"
  }

  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.lake.block_public_acls,
      aws_s3_bucket_public_access_block.lake.block_public_policy,
      aws_s3_bucket_public_access_block.lake.ignore_public_acls,
      aws_s3_bucket_public_access_block.lake.restrict_public_buckets,
    ])
    error_message = "all four public access blocks must be on"
  }

  assert {
    condition     = aws_s3_bucket_ownership_controls.lake.rule[0].object_ownership == "BucketOwnerEnforced"
    error_message = "object ownership must be BucketOwnerEnforced (ACLs off)"
  }

  assert {
    condition     = aws_s3_bucket_versioning.lake.versioning_configuration[0].status == "Enabled"
    error_message = "versioning must be enabled"
  }

  assert {
    condition     = [for r in aws_s3_bucket_server_side_encryption_configuration.lake.rule : r.apply_server_side_encryption_by_default[0].sse_algorithm] == ["AES256"]
    error_message = "default encryption must be SSE-S3 (AES256) when no KMS key is given"
  }

  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.lake.rule[0].abort_incomplete_multipart_upload[0].days_after_initiation == 1
    error_message = "incomplete multipart uploads must be aborted after 1 day"
  }

  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.lake.rule[0].noncurrent_version_expiration[0].noncurrent_days == 30
    error_message = "noncurrent versions must expire after 30 days by default"
  }

  assert {
    condition     = !aws_s3_bucket.lake.object_lock_enabled && length(aws_s3_bucket_object_lock_configuration.lake) == 0
    error_message = "object lock must be off unless object_lock_days is set"
  }

  assert {
    condition     = !aws_s3_bucket.lake.force_destroy
    error_message = "the lake bucket must not be force-destroyed by default"
  }

  # The functions.
  assert {
    condition     = keys(aws_lambda_function.stage) == ["clean", "extract", "load", "publish", "transform", "verify"]
    error_message = "want six functions (extract, transform, load, publish, clean and verify)"
  }

  assert {
    condition = alltrue([for stage, f in aws_lambda_function.stage :
      f.function_name == "tote-dev-${stage}" && f.runtime == "provided.al2023" && f.handler == "bootstrap"
    ])
    error_message = "every function must be tote-<stage> on provided.al2023 with handler bootstrap"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.stage : f.architectures == tolist(["arm64"])])
    error_message = "the default architecture must be arm64: ${jsonencode([for f in aws_lambda_function.stage : f.architectures])}"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.stage : f.reserved_concurrent_executions == 1])
    error_message = "every function must have reserved concurrency 1, so that a stage never runs twice at once"
  }

  assert {
    condition = {
      for stage, f in aws_lambda_function.stage : stage => [f.memory_size, f.timeout]
      } == {
      extract   = [512, 300]
      transform = [1024, 900]
      load      = [1024, 900]
      clean     = [256, 300]
      verify    = [512, 900]
      publish   = [1024, 900]
    }
    error_message = "memory and timeouts: ${jsonencode({ for stage, f in aws_lambda_function.stage : stage => [f.memory_size, f.timeout] })}"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.stage : f.source_code_hash == filebase64sha256("tests/testdata/lambda.zip")])
    error_message = "the functions must be redeployed when the zip changes (source_code_hash)"
  }

  assert {
    condition = {
      for stage, f in aws_lambda_function.stage : stage => f.environment[0].variables
      } == {
      extract = tomap({
        TOTE_ENVIRONMENT   = "dev"
        TOTE_STAGE         = "extract"
        TOTE_LAKE_URL      = "s3://tote-dev-lake-123456789012-eu-west-2/lake"
        TOTE_LOG_FORMAT    = "json"
        TOTE_LAG_THRESHOLD = "30m"
        TOTE_SOURCE_URL    = "secretsmanager://tote/dev/source-url"
      })
      transform = tomap({
        TOTE_ENVIRONMENT     = "dev"
        TOTE_STAGE           = "transform"
        TOTE_LAKE_URL        = "s3://tote-dev-lake-123456789012-eu-west-2/lake"
        TOTE_LOG_FORMAT      = "json"
        TOTE_LAG_THRESHOLD   = "30m"
        TOTE_ALERT_SNS_TOPIC = "arn:aws:sns:eu-west-2:123456789012:tote-dev-alerts"
      })
      load = tomap({
        TOTE_ENVIRONMENT   = "dev"
        TOTE_STAGE         = "load"
        TOTE_LAKE_URL      = "s3://tote-dev-lake-123456789012-eu-west-2/lake"
        TOTE_LOG_FORMAT    = "json"
        TOTE_LAG_THRESHOLD = "30m"
        TOTE_WAREHOUSE_URL = "secretsmanager://tote/dev/warehouse-url"
      })
      clean = tomap({
        TOTE_ENVIRONMENT   = "dev"
        TOTE_STAGE         = "clean"
        TOTE_LAKE_URL      = "s3://tote-dev-lake-123456789012-eu-west-2/lake"
        TOTE_LOG_FORMAT    = "json"
        TOTE_LAG_THRESHOLD = "30m"
      })
      publish = tomap({
        TOTE_ENVIRONMENT     = "dev"
        TOTE_STAGE           = "publish"
        TOTE_LAKE_URL        = "s3://tote-dev-lake-123456789012-eu-west-2/lake"
        TOTE_LOG_FORMAT      = "json"
        TOTE_LAG_THRESHOLD   = "30m"
        TOTE_WAREHOUSE_URL   = "secretsmanager://tote/dev/warehouse-url"
        TOTE_ICEBERG_CATALOG = "glue://tote_dev"
        TOTE_ICEBERG_RETAIN  = "168h"
      })
      verify = tomap({
        TOTE_ENVIRONMENT   = "dev"
        TOTE_STAGE         = "verify"
        TOTE_LAKE_URL      = "s3://tote-dev-lake-123456789012-eu-west-2/lake"
        TOTE_LOG_FORMAT    = "json"
        TOTE_LAG_THRESHOLD = "30m"
        TOTE_SOURCE_URL    = "secretsmanager://tote/dev/source-url"
        TOTE_WAREHOUSE_URL = "secretsmanager://tote/dev/warehouse-url"
      })
    }
    error_message = "environment: ${jsonencode({ for stage, f in aws_lambda_function.stage : stage => f.environment[0].variables })}"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.stage : length(f.vpc_config) == 0])
    error_message = "functions must run outside a VPC unless subnet_ids is set"
  }

  # Logs.
  assert {
    condition     = alltrue([for stage, g in aws_cloudwatch_log_group.function : g.name == "/aws/lambda/tote-dev-${stage}" && g.retention_in_days == 30])
    error_message = "every function needs its log group /aws/lambda/<function> with 30 days' retention"
  }

  assert {
    condition     = aws_cloudwatch_log_group.state_machine.retention_in_days == 30
    error_message = "the state machine's log group needs 30 days' retention"
  }

  assert {
    condition     = alltrue([for stage, f in aws_lambda_function.stage : f.logging_config[0].log_group == aws_cloudwatch_log_group.function[stage].name])
    error_message = "every function must log to the log group made for it"
  }

  # Secrets.
  assert {
    condition     = output.secret_names == { source = "tote/dev/source-url", warehouse = "tote/dev/warehouse-url" }
    error_message = "secret names: ${jsonencode(output.secret_names)}"
  }

  # The state machine.
  assert {
    condition     = aws_sfn_state_machine.pipeline.type == "STANDARD" && aws_sfn_state_machine.pipeline.name == "tote-dev-pipeline"
    error_message = "the state machine must be a STANDARD one named tote-pipeline"
  }

  assert {
    condition     = can(jsondecode(aws_sfn_state_machine.pipeline.definition))
    error_message = "statemachine.asl.json must render to valid JSON"
  }

  assert {
    condition = alltrue([for arn in concat([for stage in ["extract", "transform", "load", "publish"] : output.function_arns[stage]], [output.alert_topic_arn]) :
      strcontains(aws_sfn_state_machine.pipeline.definition, arn)
    ]) && !strcontains(aws_sfn_state_machine.pipeline.definition, output.function_arns["clean"])
    error_message = "the definition must use the four stages' function ARNs and the topic ARN, and not clean's"
  }

  assert {
    condition     = !strcontains(aws_sfn_state_machine.pipeline.definition, "$${")
    error_message = "the definition has a template variable left unfilled"
  }

  assert {
    condition = (
      aws_sfn_state_machine.pipeline.logging_configuration[0].log_destination == "${aws_cloudwatch_log_group.state_machine.arn}:*" &&
      aws_sfn_state_machine.pipeline.logging_configuration[0].level == "ERROR" &&
      !aws_sfn_state_machine.pipeline.logging_configuration[0].include_execution_data
    )
    error_message = "the state machine must log errors, without execution data, to its own log group"
  }

  assert {
    condition     = output.start_execution_command == "aws stepfunctions start-execution --region eu-west-2 --state-machine-arn ${aws_sfn_state_machine.pipeline.arn} --input '{\"trigger\":\"manual\"}'"
    error_message = "start command: ${output.start_execution_command}"
  }

  # The schedule.
  assert {
    condition     = aws_scheduler_schedule.schedule["pipeline"].schedule_expression == "rate(5 minutes)" && aws_scheduler_schedule.schedule["pipeline"].state == "ENABLED"
    error_message = "the default schedule must be an enabled rate(5 minutes), well inside the 30-minute promise"
  }

  assert {
    condition = (
      aws_scheduler_schedule.schedule["pipeline"].target[0].arn == aws_sfn_state_machine.pipeline.arn &&
      aws_scheduler_schedule.schedule["pipeline"].target[0].role_arn == aws_iam_role.service["scheduler"].arn
    )
    error_message = "the schedule must start the state machine with its own role"
  }

  assert {
    condition = (
      aws_scheduler_schedule.schedule["clean"].schedule_expression == "rate(1 day)" && aws_scheduler_schedule.schedule["clean"].state == "ENABLED" &&
      aws_scheduler_schedule.schedule["clean"].target[0].arn == aws_lambda_function.stage["clean"].arn &&
      aws_scheduler_schedule.schedule["clean"].target[0].role_arn == aws_iam_role.service["scheduler"].arn &&
      output.clean_schedule_name == "tote-dev-clean"
    )
    error_message = "the clean function must run daily, on a schedule of its own, with the scheduler's role"
  }

  assert {
    condition = {
      for k, s in aws_scheduler_schedule.schedule : k => [
        s.flexible_time_window[0].mode, coalesce(s.flexible_time_window[0].maximum_window_in_minutes, 0),
        s.target[0].retry_policy[0].maximum_event_age_in_seconds, s.target[0].retry_policy[0].maximum_retry_attempts,
      ]
      } == {
      pipeline           = ["OFF", 0, 60, 2]
      clean              = ["FLEXIBLE", 60, 3600, 2]
      verify             = ["FLEXIBLE", 15, 3600, 2]
      "iceberg-maintain" = ["FLEXIBLE", 60, 3600, 2]
    }
    error_message = "the pipeline's schedule starts on time and retries a minute at most; the others within their windows, for an hour"
  }

  # Alarms and alerts.
  assert {
    condition = sort([for a in aws_cloudwatch_metric_alarm.alarm : a.alarm_name]) == sort(concat(
      [for kind in ["failed", "timed-out", "aborted"] : "tote-dev-executions-${kind}"],
      [for stage in ["extract", "transform", "load", "publish", "clean", "verify"] : "tote-dev-${stage}-errors"],
      ["tote-dev-lag", "tote-dev-verify-differences", "tote-dev-verify-missing"],
    ))
    error_message = "want these twelve alarms, no more: ${jsonencode(keys(aws_cloudwatch_metric_alarm.alarm))}"
  }

  assert {
    condition = {
      for k, a in aws_cloudwatch_metric_alarm.alarm : a.metric_name => [a.namespace, a.dimensions["StateMachineArn"], a.statistic, a.comparison_operator, a.threshold] if startswith(k, "executions-")
      } == {
      for m in ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"] : m => ["AWS/States", aws_sfn_state_machine.pipeline.arn, "Sum", "GreaterThanThreshold", 0]
    }
    error_message = "want alarms on the state machine's failed, timed-out and aborted executions (Sum > 0)"
  }

  assert {
    condition = {
      for k, a in aws_cloudwatch_metric_alarm.alarm : trimsuffix(k, "-errors") => [a.namespace, a.metric_name, a.dimensions["FunctionName"], a.threshold] if endswith(k, "-errors")
      } == {
      for stage in ["extract", "transform", "load", "publish", "clean", "verify"] : stage => ["AWS/Lambda", "Errors", "tote-dev-${stage}", 0]
    }
    error_message = "want an Errors alarm on each function"
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.alarm["lag"].namespace == "Tote" &&
      aws_cloudwatch_metric_alarm.alarm["lag"].metric_name == "LagSeconds" &&
      aws_cloudwatch_metric_alarm.alarm["lag"].dimensions == tomap({ Stage = "load", Environment = "dev" }) &&
      aws_cloudwatch_metric_alarm.alarm["lag"].statistic == "Maximum" &&
      aws_cloudwatch_metric_alarm.alarm["lag"].comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.alarm["lag"].threshold == 1800
    )
    error_message = "the lag alarm must watch Tote/LagSeconds{Stage=load,Environment=dev}, Maximum > 1800"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.alarm["lag"].treat_missing_data == "breaching"
    error_message = "no lag data means loads stopped: the lag alarm must treat missing data as breaching"
  }

  # verify: on a schedule, with an alarm on what it finds and one on its
  # silence.
  assert {
    condition = (
      aws_scheduler_schedule.schedule["verify"].schedule_expression == "rate(1 day)" && aws_scheduler_schedule.schedule["verify"].state == "ENABLED" &&
      aws_scheduler_schedule.schedule["verify"].target[0].arn == aws_lambda_function.stage["verify"].arn &&
      aws_scheduler_schedule.schedule["verify"].target[0].role_arn == aws_iam_role.service["scheduler"].arn &&
      output.verify_schedule_name == "tote-dev-verify"
    )
    error_message = "the verify function must run daily, on a schedule of its own, with the scheduler's role"
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.alarm["verify-differences"].namespace == "Tote" &&
      aws_cloudwatch_metric_alarm.alarm["verify-differences"].metric_name == "Differences" &&
      aws_cloudwatch_metric_alarm.alarm["verify-differences"].dimensions == tomap({ Stage = "verify", Environment = "dev" }) &&
      aws_cloudwatch_metric_alarm.alarm["verify-differences"].statistic == "Maximum" &&
      aws_cloudwatch_metric_alarm.alarm["verify-differences"].comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.alarm["verify-differences"].threshold == 0 &&
      aws_cloudwatch_metric_alarm.alarm["verify-differences"].treat_missing_data == "ignore"
    )
    error_message = "the verify alarm must fire on Tote/Differences{Stage=verify,Environment=dev} > 0 and keep its state between comparisons"
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.alarm["verify-missing"].metric_name == "Differences" &&
      aws_cloudwatch_metric_alarm.alarm["verify-missing"].dimensions == tomap({ Stage = "verify", Environment = "dev" }) &&
      aws_cloudwatch_metric_alarm.alarm["verify-missing"].statistic == "SampleCount" &&
      aws_cloudwatch_metric_alarm.alarm["verify-missing"].period == 86400 &&
      aws_cloudwatch_metric_alarm.alarm["verify-missing"].evaluation_periods == 2 &&
      aws_cloudwatch_metric_alarm.alarm["verify-missing"].comparison_operator == "LessThanThreshold" &&
      aws_cloudwatch_metric_alarm.alarm["verify-missing"].treat_missing_data == "breaching"
    )
    error_message = "an alarm must fire when two days pass without a verify"
  }

  assert {
    condition = alltrue([for a in aws_cloudwatch_metric_alarm.alarm :
      a.alarm_actions == toset([aws_sns_topic.alerts.arn]) && a.ok_actions == toset([aws_sns_topic.alerts.arn])
    ])
    error_message = "every alarm must notify the alert topic, on alarm and on recovery"
  }

  assert {
    condition     = length(aws_sns_topic_subscription.email) == 0
    error_message = "no email subscription without alert_email"
  }
}
