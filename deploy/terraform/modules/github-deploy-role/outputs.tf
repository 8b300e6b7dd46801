output "deploy_role_arns" {
  description = "By environment, the role its deploy job assumes: the GitHub environment's variable AWS_DEPLOY_ROLE_ARN."
  value       = { for e, r in aws_iam_role.deploy : e => r.arn }
}

output "permissions_boundary_arns" {
  description = "By environment, the permissions boundary every role of the environment carries (the tote module's permissions_boundary_arn)."
  value       = { for e, p in aws_iam_policy.boundary : e => p.arn }
}

output "oidc_provider_arn" {
  description = "GitHub's OIDC identity provider in the account."
  value       = local.oidc_provider_arn
}
