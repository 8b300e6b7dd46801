# The prod environment, as CI deploys it for a version tag (v1.2.3) once a
# reviewer approves the GitHub environment "prod"
# (.github/workflows/deploy.yml). ../dev is the same module with dev's
# settings; each directory has a state of its own (backend.tf). What the two
# share is modules/environment. docs/aws.md, "Environments".

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = "tote"
      managed-by = "terraform"
    }
  }
}

module "environment" {
  source = "../../modules/environment"

  environment = "prod"
  lambda_zip  = var.lambda_zip
  alert_email = var.alert_email

  # The freshness promise (30 minutes) with room to spare, a lake that
  # Terraform can never empty, and every object kept for 30 days
  # (Object Lock: set before the first apply, it cannot be added later).
  settings = {
    schedule              = "rate(5 minutes)"
    verify_schedule       = "rate(6 hours)"
    lag_threshold_seconds = 1800
    force_destroy         = false
    object_lock_days      = var.object_lock_days
    reserved_concurrency  = var.reserved_concurrency
  }
}

# The module was called here directly before modules/environment: its
# resources keep their state.
moved {
  from = module.tote
  to   = module.environment.module.tote
}

output "tote" {
  description = "The deployment: lake_url, function_names, state_machine_arn, start_execution_command, ... (terraform output -json tote)."
  value       = module.environment.tote
}
