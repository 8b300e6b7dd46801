variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-2"
}

variable "name" {
  description = "First part of every resource name: <name>-<environment>-..."
  type        = string
  default     = "tote"
}

variable "environment" {
  description = "This deployment's environment (dev, prod, ...): in every resource name, tag, metric and alert, so that several share an account. ../dev and ../prod are the environments CI deploys."
  type        = string
  default     = "dev"
}

variable "lambda_zip" {
  description = "The zip from `make lambda ARCH=arm64`, relative to this folder."
  type        = string
  default     = "../../../../bin/tote-lambda-arm64.zip"
}

variable "architecture" {
  description = "What the zip was built for: arm64 (make lambda ARCH=arm64) or amd64."
  type        = string
  default     = "arm64"
}

variable "schedule" {
  description = "How often a pipeline run starts (EventBridge Scheduler expression)."
  type        = string
  default     = "rate(5 minutes)"
}

variable "schedule_enabled" {
  description = "Whether the schedule starts runs; false pauses the pipeline (e.g. until the secrets are set)."
  type        = bool
  default     = true
}

variable "alert_email" {
  description = "Where failure alerts go; AWS mails a confirmation link first. Empty for none."
  type        = string
  default     = ""
}

variable "object_lock_days" {
  description = "Object Lock retention of the lake in days; 0 is off. Choose it before the first apply: changing it replaces the bucket."
  type        = number
  default     = 0
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the lake with every object version in it. Keep false except when tearing down."
  type        = bool
  default     = false
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function; -1 for none (new accounts with a concurrency quota of 10 cannot reserve any)."
  type        = number
  default     = 1
}

variable "subnet_ids" {
  description = "Private subnets for the functions when the databases are in a VPC; empty for none."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups for the functions when subnet_ids is set."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags on every resource (the provider's default_tags)."
  type        = map(string)
  default = {
    project    = "tote"
    managed-by = "terraform"
  }
}

variable "iceberg_enabled" {
  description = "Publish the star as Iceberg tables in Glue, with an Athena workgroup to query them (docs/aws.md, \"The lake as tables\")."
  type        = bool
  default     = true
}
