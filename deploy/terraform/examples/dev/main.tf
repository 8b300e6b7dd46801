# The dev environment, as CI deploys it on every push to main
# (.github/workflows/deploy.yml). ../prod is the same module with prod's
# settings; each directory has a state of its own (backend.tf), so an apply
# here can never touch prod. docs/aws.md, "Environments".

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = "tote"
      managed-by = "terraform"
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

module "tote" {
  source = "../../modules/tote"

  environment = "dev"
  # examples/bootstrap made it; the deploy role creates roles only with it.
  permissions_boundary_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:policy/tote-dev-boundary"
  lambda_zip               = var.lambda_zip
  architecture             = "arm64"
  alert_email              = var.alert_email

  # Dev is for trying changes, not for the freshness promise: fewer runs,
  # a lake that `terraform destroy` may empty, no reserved concurrency (a
  # new account's quota of 10 has none to spare).
  schedule              = "rate(15 minutes)"
  verify_schedule       = "rate(1 day)"
  lag_threshold_seconds = 3600
  force_destroy         = true
  reserved_concurrency  = -1
  log_retention_days    = 7

  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids
}
