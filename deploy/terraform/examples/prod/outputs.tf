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
