variable "environment" {
  description = "The environment (dev, prod): the tote module's environment, and the name of the boundary tote-<environment>-boundary."
  type        = string
}

variable "lambda_zip" {
  description = "The zip from `make lambda ARCH=arm64`. Null for bin/tote-lambda-arm64.zip of this repository, where CI's deploy job puts it."
  type        = string
  default     = null
}

variable "alert_email" {
  description = "Where alerts go; AWS mails a confirmation link first. Empty for none."
  type        = string
  default     = ""
}

variable "settings" {
  description = "What sets this environment apart: the tote module's variables of the same names; a null (left out) one keeps the module's default."
  type = object({
    schedule              = optional(string)
    verify_schedule       = optional(string)
    lag_threshold_seconds = optional(number)
    force_destroy         = optional(bool)
    object_lock_days      = optional(number)
    reserved_concurrency  = optional(number)
    log_retention_days    = optional(number)
    subnet_ids            = optional(list(string))
    security_group_ids    = optional(list(string))
  })
  default = {}
}
