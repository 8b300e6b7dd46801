variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-2"
}

variable "lambda_zip" {
  description = "The zip from `make lambda ARCH=arm64`, relative to this folder."
  type        = string
  default     = "../../../../bin/tote-lambda-arm64.zip"
}

variable "alert_email" {
  description = "Where alerts go; AWS mails a confirmation link first. Empty for none."
  type        = string
  default     = ""
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

variable "object_lock_days" {
  description = "Object Lock retention of the lake in days; 0 is off. Choose it before the first apply: changing it replaces the bucket."
  type        = number
  default     = 30
}

variable "reserved_concurrency" {
  description = "Reserved concurrency per function; -1 for none (accounts whose concurrency quota is still 10)."
  type        = number
  default     = 1
}
