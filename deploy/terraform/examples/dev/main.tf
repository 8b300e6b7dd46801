# The dev environment, as CI deploys it on every push to main
# (.github/workflows/deploy.yml). ../prod is the same module with prod's
# settings; each directory has a state of its own (backend.tf), so an apply
# here can never touch prod. What the two share is modules/environment.
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

module "environment" {
  source = "../../modules/environment"

  environment = "dev"
  lambda_zip  = var.lambda_zip
  alert_email = var.alert_email

  # Dev is for trying changes, not for the freshness promise: fewer runs,
  # a lake that `terraform destroy` may empty, no reserved concurrency (a
  # new account's quota of 10 has none to spare).
  settings = {
    schedule              = "rate(15 minutes)"
    verify_schedule       = "rate(1 day)"
    lag_threshold_seconds = 3600
    force_destroy         = true
    reserved_concurrency  = -1
    log_retention_days    = 7
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
