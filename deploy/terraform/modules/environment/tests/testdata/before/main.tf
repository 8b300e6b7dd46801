# examples/dev as it was before modules/environment (commit 23421e5), as far
# as its addresses go: the tote module called from the root as module.tote,
# named as dev's. Its settings are left at the module's defaults: a setting
# changes a resource in place, an address or a name would replace it.
# tests/moved.tftest.hcl applies this, then plans examples/dev of today
# against the same state.

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
}

output "tote" {
  value = module.tote
}
