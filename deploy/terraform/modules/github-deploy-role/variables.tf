variable "github_repository" {
  description = "The repository whose workflows deploy, as OWNER/REPO."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "The repository must be OWNER/REPO."
  }
}

variable "environments" {
  description = "The environments to make a deploy role for; each is also the name of the GitHub environment whose jobs may assume it."
  type        = set(string)
  default     = ["dev", "prod"]

  validation {
    condition     = alltrue([for e in var.environments : can(regex("^[a-z][a-z0-9]{0,9}$", e))])
    error_message = "Environments are 1-10 characters of a-z and 0-9, as the tote module's environment."
  }
}

variable "name" {
  description = "The tote module's name: resources of environment E are named <name>-E-..."
  type        = string
  default     = "tote"
}

variable "state_bucket" {
  description = "The Terraform state bucket; each role may read and write only its environment's key in it."
  type        = string
}

variable "state_key_prefix" {
  description = "Folder of the state keys in the bucket: the key of environment E is <prefix>/E.tfstate (examples/E/backend.tf)."
  type        = string
  default     = "tote"
}

variable "create_oidc_provider" {
  description = "Create GitHub's OIDC identity provider. An account has at most one per URL: false uses the one already there."
  type        = bool
  default     = true
}

variable "lake_force_destroy_environments" {
  description = "Environments whose lake Terraform may empty on destroy (force_destroy in examples/dev): their role may delete the lake's objects. No other role may touch a lake object."
  type        = set(string)
  default     = ["dev"]
}

variable "max_session_seconds" {
  description = "How long a deploy's credentials last."
  type        = number
  default     = 3600
}
