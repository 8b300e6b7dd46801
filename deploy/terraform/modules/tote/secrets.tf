# The two database URLs. Terraform creates the secrets but never their values
# (no aws_secretsmanager_secret_version): values are put out of band with
# `aws secretsmanager put-secret-value`, so they are in neither state nor repo.

resource "aws_secretsmanager_secret" "source" {
  name                    = coalesce(var.source_secret_name, "${var.name}/${var.environment}/source-url")
  description             = "PostgreSQL URL of the totesys source database, read by the ${local.prefix} extract function."
  recovery_window_in_days = var.secret_recovery_window_days

  tags = local.tags
}

resource "aws_secretsmanager_secret" "warehouse" {
  name                    = coalesce(var.warehouse_secret_name, "${var.name}/${var.environment}/warehouse-url")
  description             = "PostgreSQL URL of the warehouse database, read by the ${local.prefix} load function."
  recovery_window_in_days = var.secret_recovery_window_days

  tags = local.tags
}
