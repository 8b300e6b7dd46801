# The roles CI deploys tote with, once per account, applied by an
# administrator with local state (or a backend of your choosing): GitHub's
# OIDC provider, a deploy role and a permissions boundary per environment.
# docs/aws.md, "Setting up CI's deploys". The Terraform and AWS provider
# versions are the module's (modules/github-deploy-role/versions.tf).

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      project    = "tote"
      managed-by = "terraform"
    }
  }
}

module "deploy_roles" {
  source = "../../modules/github-deploy-role"

  github_repository    = var.github_repository
  environments         = var.environments
  state_bucket         = var.state_bucket
  create_oidc_provider = var.create_oidc_provider
}
