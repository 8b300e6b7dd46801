# One environment as CI deploys it (docs/decisions/0019-environments.md): the
# tote module under the environment's permissions boundary, with what every
# environment shares, and the settings that set this one apart. Each
# environment keeps a root module and a state of its own (examples/dev,
# examples/prod: a backend, a provider and a call of this module); this module
# owns what those roots would otherwise each repeat. It does not configure the
# provider (the root does) nor make the boundary (examples/bootstrap does).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

module "tote" {
  source = "../tote"

  environment = var.environment
  # examples/bootstrap made it; the deploy role creates roles only with it.
  permissions_boundary_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:policy/tote-${var.environment}-boundary"
  lambda_zip               = coalesce(var.lambda_zip, "${path.module}/../../../../bin/tote-lambda-arm64.zip")
  architecture             = "arm64"
  alert_email              = var.alert_email

  # Null leaves the module's default.
  schedule              = var.settings.schedule
  verify_schedule       = var.settings.verify_schedule
  lag_threshold_seconds = var.settings.lag_threshold_seconds
  force_destroy         = var.settings.force_destroy
  object_lock_days      = var.settings.object_lock_days
  reserved_concurrency  = var.settings.reserved_concurrency
  log_retention_days    = var.settings.log_retention_days
  subnet_ids            = var.settings.subnet_ids
  security_group_ids    = var.settings.security_group_ids
}
