# tote on AWS, as one root module: `terraform apply` here deploys everything.
# docs/aws.md walks through it from a clean account.

provider "aws" {
  region = var.region

  # Every resource the module creates carries these tags (and the module's
  # own: environment, tote).
  default_tags {
    tags = var.tags
  }
}

module "tote" {
  source = "../../modules/tote"

  name         = var.name
  environment  = var.environment
  lambda_zip   = var.lambda_zip
  architecture = var.architecture

  schedule         = var.schedule
  schedule_enabled = var.schedule_enabled
  alert_email      = var.alert_email

  object_lock_days     = var.object_lock_days
  force_destroy        = var.force_destroy
  reserved_concurrency = var.reserved_concurrency

  iceberg_enabled = var.iceberg_enabled

  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids
}
