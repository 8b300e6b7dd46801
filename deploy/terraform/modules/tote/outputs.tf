output "bucket_name" {
  description = "The lake bucket."
  value       = aws_s3_bucket.lake.bucket
}

output "lake_url" {
  description = "The lake as tote names it (TOTE_LAKE_URL / --lake), for `tote lake ls` or `tote rebuild` from any machine."
  value       = local.lake_url
}

output "function_names" {
  description = "The Lambda functions, by stage (and clean)."
  value       = { for stage, fn in aws_lambda_function.stage : stage => fn.function_name }
}

output "function_arns" {
  description = "The Lambda functions' ARNs, by stage (and clean)."
  value       = { for stage, fn in aws_lambda_function.stage : stage => fn.arn }
}

output "state_machine_arn" {
  description = "The pipeline state machine."
  value       = aws_sfn_state_machine.pipeline.arn
}

output "alert_topic_arn" {
  description = "The SNS topic that failures and alarms are sent to; subscribe more endpoints to it."
  value       = aws_sns_topic.alerts.arn
}

output "secret_names" {
  description = "The Secrets Manager secrets whose values must be set by hand (source, warehouse)."
  value = {
    source    = aws_secretsmanager_secret.source.name
    warehouse = aws_secretsmanager_secret.warehouse.name
  }
}

output "secret_arns" {
  description = "The secrets' ARNs (source, warehouse)."
  value = {
    source    = aws_secretsmanager_secret.source.arn
    warehouse = aws_secretsmanager_secret.warehouse.arn
  }
}

output "log_group_names" {
  description = "CloudWatch log groups: one per function, and the state machine's."
  value = merge(
    { for stage, group in aws_cloudwatch_log_group.function : stage => group.name },
    { state_machine = aws_cloudwatch_log_group.state_machine.name },
  )
}

output "schedule_name" {
  description = "The EventBridge Scheduler schedule (in the default group)."
  value       = aws_scheduler_schedule.schedule["pipeline"].name
}

output "clean_schedule_name" {
  description = "The EventBridge Scheduler schedule of the clean function (in the default group)."
  value       = aws_scheduler_schedule.schedule["clean"].name
}

output "verify_schedule_name" {
  description = "The EventBridge Scheduler schedule of the verify function (in the default group)."
  value       = aws_scheduler_schedule.schedule["verify"].name
}

output "glue_database" {
  description = "The Glue database that holds the Iceberg tables (null without iceberg_enabled)."
  value       = var.iceberg_enabled ? aws_glue_catalog_database.iceberg[0].name : null
}

output "athena_workgroup" {
  description = "The Athena workgroup for queries on the Iceberg tables (null without iceberg_enabled)."
  value       = var.iceberg_enabled ? aws_athena_workgroup.lake[0].name : null
}

output "athena_query_command" {
  description = "A ready query on the Iceberg tables: units sold and revenue by currency over the orders' current versions (after the views are created: the create_views_command)."
  value = var.iceberg_enabled ? join(" ", [
    "aws athena start-query-execution --region ${local.region}",
    "--work-group ${aws_athena_workgroup.lake[0].name}",
    "--query-execution-context Database=${aws_glue_catalog_database.iceberg[0].name}",
    "--query-string \"SELECT c.currency_code, sum(f.units_sold) AS units, sum(f.units_sold * f.unit_price) AS revenue FROM fact_sales_order_current f JOIN dim_currency c ON c.currency_id = f.currency_id GROUP BY c.currency_code ORDER BY revenue DESC\"",
  ]) : null
}

output "create_views_command" {
  description = "Creates (or replaces) the facts' current views in Athena, from the saved named queries."
  value = var.iceberg_enabled ? join(" ", [
    "for id in $(aws athena list-named-queries --region ${local.region} --work-group ${aws_athena_workgroup.lake[0].name} --query 'NamedQueryIds[]' --output text); do",
    "q=$(aws athena get-named-query --region ${local.region} --named-query-id $id --query NamedQuery.QueryString --output text);",
    "aws athena start-query-execution --region ${local.region} --work-group ${aws_athena_workgroup.lake[0].name} --query-execution-context Database=${aws_glue_catalog_database.iceberg[0].name} --query-string \"$q\"; done",
  ]) : null
}

output "start_execution_command" {
  description = "Starts a pipeline run by hand."
  value       = "aws stepfunctions start-execution --region ${local.region} --state-machine-arn ${aws_sfn_state_machine.pipeline.arn} --input '{\"trigger\":\"manual\"}'"
}
