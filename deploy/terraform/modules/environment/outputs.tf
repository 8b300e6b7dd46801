output "tote" {
  description = "Every output of the tote module (modules/tote/outputs.tf), as one object: lake_url, function_names, state_machine_arn, start_execution_command, ..."
  value       = module.tote
}
