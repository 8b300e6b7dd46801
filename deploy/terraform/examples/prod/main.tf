# The prod environment, as CI deploys it for a version tag (v1.2.3) once a
# reviewer approves the GitHub environment "prod"
# (.github/workflows/deploy.yml). ../dev is the same module with dev's
# settings; each directory has a state of its own (backend.tf).
# docs/aws.md, "Environments".

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

  environment = "prod"
  # examples/bootstrap made it; the deploy role creates roles only with it.
  permissions_boundary_arn = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:policy/tote-prod-boundary"
  lambda_zip               = var.lambda_zip
  architecture             = "arm64"
  alert_email              = var.alert_email

  # The freshness promise (30 minutes) with room to spare, a lake that
  # Terraform can never empty, and every object kept for 30 days
  # (Object Lock: set before the first apply, it cannot be added later).
  schedule              = "rate(5 minutes)"
  verify_schedule       = "rate(6 hours)"
  lag_threshold_seconds = 1800
  force_destroy         = false
  object_lock_days      = var.object_lock_days
  reserved_concurrency  = var.reserved_concurrency

  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids
}
