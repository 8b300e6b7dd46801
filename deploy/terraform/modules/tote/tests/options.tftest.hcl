# The module's options: each changes what it says and nothing else.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip  = "tests/testdata/lambda.zip"
  environment = "dev"
}

run "options" {
  command = plan

  variables {
    architecture          = "amd64"
    schedule              = "cron(0/10 6-22 ? * MON-FRI *)"
    schedule_enabled      = false
    object_lock_days      = 7
    alert_email           = "data-team@example.com"
    lag_threshold_seconds = 3600
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.stage : f.architectures == tolist(["x86_64"])])
    error_message = "Go's amd64 must become Lambda's x86_64: ${jsonencode([for f in aws_lambda_function.stage : f.architectures])}"
  }

  assert {
    condition     = aws_scheduler_schedule.schedule["pipeline"].schedule_expression == "cron(0/10 6-22 ? * MON-FRI *)" && aws_scheduler_schedule.schedule["pipeline"].state == "DISABLED"
    error_message = "the schedule must follow var.schedule and var.schedule_enabled"
  }

  assert {
    condition     = aws_s3_bucket.lake.object_lock_enabled
    error_message = "object_lock_days > 0 must create the bucket with Object Lock"
  }

  assert {
    condition = (
      aws_s3_bucket_object_lock_configuration.lake[0].rule[0].default_retention[0].mode == "GOVERNANCE" &&
      aws_s3_bucket_object_lock_configuration.lake[0].rule[0].default_retention[0].days == 7
    )
    error_message = "object lock must default to GOVERNANCE retention of object_lock_days"
  }

  assert {
    condition = (
      length(aws_sns_topic_subscription.email) == 1 &&
      aws_sns_topic_subscription.email[0].protocol == "email" &&
      aws_sns_topic_subscription.email[0].endpoint == "data-team@example.com"
    )
    error_message = "alert_email must subscribe that address to the topic by email"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.alarm["lag"].threshold == 3600
    error_message = "the lag alarm must follow lag_threshold_seconds"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.stage : f.environment[0].variables["TOTE_LAG_THRESHOLD"] == "60m"])
    error_message = "TOTE_LAG_THRESHOLD must be the threshold as a Go duration"
  }
}

run "unknown_architecture" {
  command = plan

  variables {
    architecture = "x86_64"
  }

  expect_failures = [var.architecture]
}

run "bad_schedule" {
  command = plan

  variables {
    schedule = "every 5 minutes"
  }

  expect_failures = [var.schedule]
}

run "bad_function_settings_unknown" {
  command = plan

  variables {
    function_settings = { clean = { memory_mb = 512 } } # clean's are fixed
  }

  expect_failures = [var.function_settings]
}

run "bad_function_settings_memory" {
  command = plan

  variables {
    function_settings = { load = { memory_mb = 64 } } # below 128 MB
  }

  expect_failures = [var.function_settings]
}

run "bad_function_settings_timeout" {
  command = plan

  variables {
    function_settings = { load = { timeout_seconds = 901 } } # above 900 s
  }

  expect_failures = [var.function_settings]
}

run "other_settings" {
  command = apply

  variables {
    environment           = "staging"
    bucket_name           = "staging-lake"
    lake_prefix           = "v1/lake"
    source_secret_name    = "staging/totesys"
    function_settings     = { transform = { memory_mb = 2048 }, verify = { timeout_seconds = 600 } }
    log_retention_days    = 90
    reserved_concurrency  = -1
    lag_threshold_seconds = 90
    function_environment  = { TOTE_LOG_LEVEL = "debug", TOTE_STAGE = "overridden?" }
    warehouse_secret_name = null
  }

  assert {
    condition     = output.lake_url == "s3://staging-lake/v1/lake" && output.bucket_name == "staging-lake"
    error_message = "lake URL ${output.lake_url} from bucket_name and lake_prefix"
  }

  assert {
    condition     = output.secret_names == { source = "staging/totesys", warehouse = "tote/staging/warehouse-url" }
    error_message = "secret names: ${jsonencode(output.secret_names)}"
  }

  assert {
    condition     = output.function_names == { extract = "tote-staging-extract", transform = "tote-staging-transform", load = "tote-staging-load", clean = "tote-staging-clean", verify = "tote-staging-verify", publish = "tote-staging-publish" }
    error_message = "function names must start with <name>-<environment>"
  }

  assert {
    condition = (
      aws_lambda_function.stage["transform"].memory_size == 2048 && aws_lambda_function.stage["transform"].timeout == 900 &&
      aws_lambda_function.stage["verify"].timeout == 600 && aws_lambda_function.stage["verify"].memory_size == 512 &&
      aws_lambda_function.stage["extract"].memory_size == 512 && aws_lambda_function.stage["extract"].timeout == 300
    )
    error_message = "memory and timeout must be set per function, each over its default"
  }

  assert {
    condition     = alltrue([for g in concat(values(aws_cloudwatch_log_group.function), [aws_cloudwatch_log_group.state_machine]) : g.retention_in_days == 90])
    error_message = "every log group must follow log_retention_days"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.stage : f.environment[0].variables["TOTE_LAG_THRESHOLD"] == "90s"])
    error_message = "a lag threshold that is not whole minutes must be given in seconds"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.stage : f.reserved_concurrent_executions == -1])
    error_message = "reserved_concurrency = -1 must reserve nothing"
  }

  assert {
    condition = alltrue([for stage, f in aws_lambda_function.stage :
      lookup(f.environment[0].variables, "TOTE_LOG_LEVEL", "") == "debug" && f.environment[0].variables["TOTE_STAGE"] == stage
    ])
    error_message = "extra environment must be added, but never replace the module's own variables"
  }

  assert {
    condition = one([for s in jsondecode(aws_iam_role_policy.function["load"].policy).Statement : s.Resource if s.Sid == "LakeRead"]) == [
      "arn:aws:s3:::staging-lake/v1/lake/processed/*",
      "arn:aws:s3:::staging-lake/v1/lake/manifests/processed/*",
      "arn:aws:s3:::staging-lake/v1/lake/rejects/*",
      "arn:aws:s3:::staging-lake/v1/lake/manifests/raw/*",
      "arn:aws:s3:::staging-lake/v1/lake/status/extract.json",
      "arn:aws:s3:::staging-lake/v1/lake/status/load.json",
      "arn:aws:s3:::staging-lake/v1/lake/status/latest_raw.json",
      "arn:aws:s3:::staging-lake/v1/lake/status/latest_processed.json",
    ]
    error_message = "policies must follow bucket_name and lake_prefix"
  }
}
