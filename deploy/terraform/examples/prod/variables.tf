variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-2"
}

variable "lambda_zip" {
  description = "The zip from `make lambda ARCH=arm64`; null for the repository's bin/tote-lambda-arm64.zip."
  type        = string
  default     = null
}

variable "alert_email" {
  description = "Where alerts go; AWS mails a confirmation link first. Empty for none."
  type        = string
  default     = ""
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
