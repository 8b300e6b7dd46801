# The lake as Iceberg tables: the Glue database, the Athena workgroup, the
# views of the facts' current versions, and the Publish step after Load.

mock_provider "aws" {
  source = "./tests/mocks"
}

variables {
  lambda_zip  = "tests/testdata/lambda.zip"
  environment = "dev"
}

run "iceberg" {
  command = apply

  assert {
    condition = (
      aws_glue_catalog_database.iceberg[0].name == "tote_dev" &&
      aws_glue_catalog_database.iceberg[0].location_uri == "s3://tote-dev-lake-123456789012-eu-west-2/lake/iceberg" &&
      output.glue_database == "tote_dev"
    )
    error_message = "the Glue database must be <name>_<environment>, located at the lake's iceberg/ prefix"
  }

  assert {
    condition = (
      aws_lambda_function.stage["publish"].environment[0].variables["TOTE_ICEBERG_CATALOG"] == "glue://tote_dev" &&
      aws_lambda_function.stage["publish"].environment[0].variables["TOTE_ICEBERG_RETAIN"] == "168h"
    )
    error_message = "publish must commit to the environment's Glue database and keep a week of snapshots"
  }

  assert {
    condition = (
      aws_scheduler_schedule.schedule["iceberg-maintain"].schedule_expression == "rate(1 day)" &&
      aws_scheduler_schedule.schedule["iceberg-maintain"].target[0].arn == aws_lambda_function.stage["publish"].arn &&
      jsondecode(aws_scheduler_schedule.schedule["iceberg-maintain"].target[0].input) == { trigger = "maintain" } &&
      contains(one([for s in jsondecode(aws_iam_role_policy.scheduler.policy).Statement : s.Resource if s.Sid == "InvokeOnSchedules"]), aws_lambda_function.stage["publish"].arn)
    )
    error_message = "maintenance must invoke publish daily with the trigger maintain, with the scheduler's role"
  }

  assert {
    condition = (
      aws_athena_workgroup.lake[0].name == "tote-dev" &&
      aws_athena_workgroup.lake[0].configuration[0].enforce_workgroup_configuration &&
      aws_athena_workgroup.lake[0].configuration[0].engine_version[0].selected_engine_version == "Athena engine version 3" &&
      aws_athena_workgroup.lake[0].configuration[0].result_configuration[0].output_location == "s3://tote-dev-lake-123456789012-eu-west-2/athena-results/" &&
      aws_athena_workgroup.lake[0].configuration[0].result_configuration[0].encryption_configuration[0].encryption_option == "SSE_S3" &&
      aws_athena_workgroup.lake[0].configuration[0].bytes_scanned_cutoff_per_query == 10737418240
    )
    error_message = "the workgroup: engine 3 (Iceberg), its settings enforced, results encrypted in the lake's bucket outside the lake, a cap on bytes scanned"
  }

  assert {
    condition     = one([for r in aws_s3_bucket_lifecycle_configuration.lake.rule : r.expiration[0].days if r.id == "athena-results"]) == 7
    error_message = "Athena's results must expire after a week"
  }

  assert {
    condition = (
      keys(aws_athena_named_query.current_view) == ["fact_payment_current", "fact_purchase_order_current", "fact_sales_order_current"] &&
      alltrue([for name, q in aws_athena_named_query.current_view :
        q.database == "tote_dev" && q.workgroup == aws_athena_workgroup.lake[0].id &&
        startswith(q.query, "CREATE OR REPLACE VIEW ${name} AS") && strcontains(q.query, "WHERE newest = 1 AND NOT is_deleted")
      ])
    )
    error_message = "each fact's current view, rendered from the model, saved in the workgroup for the environment's database"
  }

  assert {
    condition = (
      strcontains(output.athena_query_command, "--work-group tote-dev") &&
      strcontains(output.athena_query_command, "Database=tote_dev") &&
      strcontains(output.athena_query_command, "FROM fact_sales_order_current f JOIN dim_currency c")
    )
    error_message = "a ready query on the environment's tables: ${output.athena_query_command}"
  }

  # The state machine publishes after Load, keeping Load's output.
  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.pipeline.definition).States.Load.Next == "IcebergEnabled" &&
      jsondecode(aws_sfn_state_machine.pipeline.definition).States.IcebergEnabled.Choices[0].And[2].StringEquals == "load" &&
      jsondecode(aws_sfn_state_machine.pipeline.definition).States.Publish.Resource == aws_lambda_function.stage["publish"].arn &&
      jsondecode(aws_sfn_state_machine.pipeline.definition).States.Publish.ResultPath == "$.publish" &&
      jsondecode(aws_sfn_state_machine.pipeline.definition).States.Publish.Next == "Done" &&
      jsondecode(aws_sfn_state_machine.pipeline.definition).States.Publish.Catch[0].Next == "PublishFailed"
    )
    error_message = "Load must go on to Publish, which runs the publish function, alerts on failure and keeps Load's output"
  }
}

run "iceberg_off" {
  command = apply

  variables {
    iceberg_enabled = false
  }

  assert {
    condition = (
      length(aws_glue_catalog_database.iceberg) == 0 && length(aws_athena_workgroup.lake) == 0 && length(aws_athena_named_query.current_view) == 0 &&
      output.glue_database == null && output.athena_query_command == null
    )
    error_message = "iceberg_enabled = false creates no Glue database, workgroup or views"
  }

  assert {
    condition = (
      jsondecode(aws_sfn_state_machine.pipeline.definition).States.IcebergEnabled.Choices[0].And[2].StringEquals == "off" &&
      !contains(keys(aws_scheduler_schedule.schedule), "iceberg-maintain") &&
      aws_lambda_function.stage["publish"].environment[0].variables["TOTE_ICEBERG_CATALOG"] == "off" &&
      !strcontains(aws_iam_role_policy.function["publish"].policy, "glue:")
    )
    error_message = "without Iceberg the state machine skips Publish (no stage's output is named off), nothing maintains, and publish may not touch Glue"
  }
}
