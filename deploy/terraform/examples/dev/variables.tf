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
