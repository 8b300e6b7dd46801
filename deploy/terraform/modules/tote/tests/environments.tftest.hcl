# Two environments side by side in one account: every name differs, every
# taggable resource says which environment it belongs to, and every metric
# an alarm watches carries the environment as a dimension.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip = "tests/testdata/lambda.zip"
}

run "dev" {
  command = apply

  variables {
    environment = "dev"
  }

  assert {
    condition = alltrue([for t in concat(
      [for f in aws_lambda_function.stage : f.tags],
      [for r in aws_iam_role.function : r.tags],
      [for g in aws_cloudwatch_log_group.function : g.tags],
      [for a in aws_cloudwatch_metric_alarm.alarm : a.tags],
      [
        aws_s3_bucket.lake.tags, aws_sns_topic.alerts.tags, aws_sfn_state_machine.pipeline.tags,
        aws_cloudwatch_log_group.state_machine.tags, aws_iam_role.service["state-machine"].tags, aws_iam_role.service["scheduler"].tags,
        aws_secretsmanager_secret.source.tags, aws_secretsmanager_secret.warehouse.tags,
        aws_glue_catalog_database.iceberg[0].tags, aws_athena_workgroup.lake[0].tags,
      ],
    ) : t["environment"] == "dev" && t["tote"] == "tote"])
    error_message = "every taggable resource must carry environment = dev and tote = tote"
  }

  assert {
    condition     = alltrue([for f in aws_lambda_function.stage : f.environment[0].variables["TOTE_ENVIRONMENT"] == "dev"])
    error_message = "every function must get TOTE_ENVIRONMENT, the Environment dimension of its metrics"
  }

  assert {
    condition = alltrue([for a in aws_cloudwatch_metric_alarm.alarm :
      a.namespace != "Tote" || lookup(a.dimensions, "Environment", "") == "dev"
    ])
    error_message = "every alarm on tote's own metrics must select the environment's"
  }

  assert {
    condition     = strcontains(aws_sfn_state_machine.pipeline.definition, "'tote dev: {} failed ({})'")
    error_message = "the state machine's alerts must name the environment"
  }
}

run "prod" {
  command = apply

  variables {
    environment = "prod"
    tags        = { owner = "data-team" }
  }

  assert {
    condition = (
      length(setintersection(values(output.function_names), values(run.dev.function_names))) == 0 &&
      length(setintersection(values(output.secret_names), values(run.dev.secret_names))) == 0 &&
      length(setintersection(values(output.log_group_names), values(run.dev.log_group_names))) == 0 &&
      output.bucket_name != run.dev.bucket_name &&
      output.schedule_name != run.dev.schedule_name &&
      output.clean_schedule_name != run.dev.clean_schedule_name &&
      output.glue_database != run.dev.glue_database &&
      output.athena_workgroup != run.dev.athena_workgroup
    )
    error_message = "prod's names must differ from dev's: ${jsonencode(output.function_names)}, ${output.bucket_name}"
  }

  assert {
    condition = (
      output.function_names["load"] == "tote-prod-load" &&
      output.bucket_name == "tote-prod-lake-123456789012-eu-west-2" &&
      output.secret_names["warehouse"] == "tote/prod/warehouse-url" &&
      aws_sns_topic.alerts.name == "tote-prod-alerts" &&
      aws_cloudwatch_metric_alarm.alarm["lag"].alarm_name == "tote-prod-lag" &&
      aws_iam_role.service["state-machine"].name == "tote-prod-state-machine"
    )
    error_message = "names must be <name>-<environment>-...: ${output.function_names["load"]}, ${output.bucket_name}"
  }

  assert {
    condition     = aws_s3_bucket.lake.tags == tomap({ environment = "prod", tote = "tote", owner = "data-team" })
    error_message = "var.tags must be added to the module's own: ${jsonencode(aws_s3_bucket.lake.tags)}"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.alarm["lag"].dimensions == tomap({ Stage = "load", Environment = "prod" })
    error_message = "prod's lag alarm must watch prod's metric"
  }
}

run "environment_name" {
  command = plan

  variables {
    environment = "Prod-1"
  }

  expect_failures = [var.environment]
}

# 24 + 10 characters of name and environment fit S3's 63 in eu-west-2 and
# not in a region with a longer name.
run "bucket_name_too_long" {
  command = plan

  variables {
    name        = "a-very-long-team-name-xy"
    environment = "production"
  }

  override_data {
    target = data.aws_region.current
    values = { name = "ap-southeast-2" }
  }

  expect_failures = [aws_s3_bucket.lake]
}
