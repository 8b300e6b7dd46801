# Prod's state, in the state bucket under a key of its own. The bucket and
# region are given at init, from the GitHub environment's variables in CI:
#
#   terraform init -backend-config="bucket=tote-tfstate-ACCOUNT_ID" -backend-config="region=eu-west-2"
#
# (docs/aws.md makes the bucket). The S3 lock file (use_lockfile) keeps two
# applies from running at once; it needs Terraform 1.10, which
# modules/environment requires.
terraform {
  backend "s3" {
    key          = "tote/prod.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
