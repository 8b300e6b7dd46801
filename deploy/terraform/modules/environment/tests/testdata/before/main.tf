# examples/dev as it was before modules/environment (commit 23421e5): the
# tote module called from the root. tests/moved.tftest.hcl applies it, then
# plans examples/dev of today against the same state.

variable "lambda_zip" {
  type = string
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

module "tote" {
  source = "../../../../tote"

  environment              = "dev"
  permissions_boundary_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:policy/tote-dev-boundary"
  lambda_zip               = var.lambda_zip
  architecture             = "arm64"
  alert_email              = ""

  schedule              = "rate(15 minutes)"
  verify_schedule       = "rate(1 day)"
  lag_threshold_seconds = 3600
  force_destroy         = true
  reserved_concurrency  = -1
  log_retention_days    = 7
  subnet_ids            = []
  security_group_ids    = []
}

output "tote" {
  value = module.tote
}
