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
  value       = aws_scheduler_schedule.pipeline.name
}

output "clean_schedule_name" {
  description = "The EventBridge Scheduler schedule of the clean function (in the default group)."
  value       = aws_scheduler_schedule.clean.name
}

output "start_execution_command" {
  description = "Starts a pipeline run by hand."
  value       = "aws stepfunctions start-execution --region ${local.region} --state-machine-arn ${aws_sfn_state_machine.pipeline.arn} --input '{\"trigger\":\"manual\"}'"
}
