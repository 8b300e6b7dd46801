variable "region" {
  description = "Region of the provider (IAM is global; the roles may deploy to any region)."
  type        = string
  default     = "eu-west-2"
}

variable "github_repository" {
  description = "The repository whose workflows deploy, as OWNER/REPO."
  type        = string
}

variable "environments" {
  description = "Environments to make a deploy role for (and GitHub environments of the same names)."
  type        = set(string)
  default     = ["dev", "prod"]
}

variable "state_bucket" {
  description = "The Terraform state bucket (docs/aws.md, step 1)."
  type        = string
}

variable "create_oidc_provider" {
  description = "False if the account already has GitHub's OIDC provider."
  type        = bool
  default     = true
}
