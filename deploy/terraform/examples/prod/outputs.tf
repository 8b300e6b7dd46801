output "lake_url" {
  description = "The lake, for tote's --lake."
  value       = module.tote.lake_url
}

output "function_names" {
  description = "The Lambda functions, by stage."
  value       = module.tote.function_names
}

output "state_machine_arn" {
  description = "The pipeline state machine."
  value       = module.tote.state_machine_arn
}

output "alert_topic_arn" {
  description = "The alert topic."
  value       = module.tote.alert_topic_arn
}

output "secret_names" {
  description = "Secrets whose values must be put by hand (docs/aws.md)."
  value       = module.tote.secret_names
}

output "start_execution_command" {
  description = "Starts a run by hand."
  value       = module.tote.start_execution_command
}

output "glue_database" {
  description = "The Glue database of the Iceberg tables."
  value       = module.tote.glue_database
}

output "athena_query_command" {
  description = "A ready Athena query on the Iceberg tables."
  value       = module.tote.athena_query_command
}

output "create_views_command" {
  description = "Creates the facts' current views in Athena."
  value       = module.tote.create_views_command
}
