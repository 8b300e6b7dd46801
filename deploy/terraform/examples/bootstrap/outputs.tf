output "deploy_role_arns" {
  description = "By environment: set as the GitHub environment's variable AWS_DEPLOY_ROLE_ARN."
  value       = module.deploy_roles.deploy_role_arns
}

output "permissions_boundary_arns" {
  description = "By environment: the boundary examples/<environment> gives its roles."
  value       = module.deploy_roles.permissions_boundary_arns
}
