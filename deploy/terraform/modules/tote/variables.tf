# Naming

variable "name" {
  description = "First part of every resource name (functions, roles, bucket, topic, alarms, schedule): <name>-<environment>-..."
  type        = string
  default     = "tote"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,23}$", var.name))
    error_message = "The name must be 1-24 characters of a-z, 0-9 and '-', starting with a letter (it ends up in bucket and role names)."
  }
}

variable "environment" {
  description = "The environment this deployment is (dev, staging, prod, ...): second part of every resource name, the environment tag on every resource, the Environment dimension of every metric (TOTE_ENVIRONMENT) and the name in every alert. Environments side by side in one account differ by it alone."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,9}$", var.environment))
    error_message = "The environment must be 1-10 characters of a-z and 0-9, starting with a letter (dev, prod, ...): it ends up in bucket, role and function names."
  }
}

variable "tags" {
  description = "Tags on every resource that takes tags, beside the module's own (environment = <environment>, tote = <name>). A provider's default_tags add to them."
  type        = map(string)
  default     = {}
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary of every role the module creates. Null (the default) sets none. A deploy role made by modules/github-deploy-role may create roles only with its environment's boundary: pass its permissions_boundary_arns output."
  type        = string
  default     = null
}

# Code

variable "lambda_zip" {
  description = "Path of the Lambda zip built by `make lambda` (one `bootstrap` for all the functions), e.g. bin/tote-lambda-arm64.zip."
  type        = string
}

variable "architecture" {
  description = "CPU architecture the zip was built for: arm64 or amd64 (Go's names; amd64 becomes Lambda's x86_64)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "amd64"], var.architecture)
    error_message = "The architecture must be arm64 or amd64."
  }
}

# Functions

variable "function_settings" {
  description = "Memory (MB; Lambda gives CPU in proportion) and timeout (seconds) by function, each over its default: extract 512 MB and 300 s; transform, load and publish (which writes the Iceberg tables' Parquet files) 1024 MB and 900 s; verify 512 MB and 900 s. For example { transform = { memory_mb = 2048 } }. Clean's are fixed (256 MB, 300 s)."
  type = map(object({
    memory_mb       = optional(number)
    timeout_seconds = optional(number)
  }))
  default  = {}
  nullable = false

  validation {
    condition     = alltrue([for f in keys(var.function_settings) : contains(["extract", "transform", "load", "publish", "verify"], f)])
    error_message = "function_settings takes extract, transform, load, publish and verify."
  }

  validation {
    condition     = alltrue([for f in values(var.function_settings) : coalesce(f.memory_mb, 128) >= 128 && coalesce(f.memory_mb, 128) <= 10240])
    error_message = "Lambda memory must be between 128 and 10240 MB."
  }

  validation {
    condition     = alltrue([for f in values(var.function_settings) : coalesce(f.timeout_seconds, 1) >= 1 && coalesce(f.timeout_seconds, 1) <= 900])
    error_message = "Lambda timeouts must be between 1 and 900 seconds."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrency of each function: 1 keeps two runs of a stage from overlapping. -1 reserves none (for accounts whose Lambda concurrency quota is still the new-account 10, where reserving fails); the lake's create-if-absent manifests and the warehouse's advisory lock still keep overlapping runs correct."
  type        = number
  default     = 1
  nullable    = false

  validation {
    condition     = var.reserved_concurrency == -1 || var.reserved_concurrency >= 1
    error_message = "The reserved concurrency must be -1 (none) or at least 1."
  }
}

variable "function_environment" {
  description = "Extra environment variables for all the functions, e.g. { TOTE_LOG_LEVEL = \"debug\" }. The module's own (TOTE_STAGE, TOTE_LAKE_URL, ...) win over these."
  type        = map(string)
  default     = {}
}

variable "lag_threshold_seconds" {
  description = "The freshness promise: data older than this in the warehouse is late. Passed to the functions as TOTE_LAG_THRESHOLD and used as the lag alarm's threshold."
  type        = number
  default     = 1800
  nullable    = false

  validation {
    condition     = var.lag_threshold_seconds >= 60 && floor(var.lag_threshold_seconds) == var.lag_threshold_seconds
    error_message = "The lag threshold must be a whole number of seconds, at least 60."
  }
}

variable "subnet_ids" {
  description = "Subnets to run the functions in, for a database in a private subnet. Empty (the default) runs them outside any VPC. In a VPC the functions need a route to S3 (a gateway endpoint), Secrets Manager (an interface endpoint or a NAT gateway) and CloudWatch Logs (Lambda's own path, no route needed)."
  type        = list(string)
  default     = []
  nullable    = false
}

variable "security_group_ids" {
  description = "Security groups of the functions' network interfaces; required when subnet_ids is set."
  type        = list(string)
  default     = []
  nullable    = false
}

# Lake

variable "bucket_name" {
  description = "Name of the lake bucket. Null (the default) makes <name>-lake-<account id>-<region>."
  type        = string
  default     = null

  validation {
    condition     = var.bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "The bucket name must be a valid S3 bucket name (3-63 characters of a-z, 0-9, '.' and '-')."
  }
}

variable "lake_prefix" {
  description = "Key prefix of the lake inside the bucket; the lake URL is s3://<bucket>/<lake_prefix>."
  type        = string
  default     = "lake"

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.lake_prefix))
    error_message = "The lake prefix must be non-empty path segments without leading or trailing '/'."
  }
}

variable "kms_key_arn" {
  description = "KMS key to encrypt the lake with (SSE-KMS, with an S3 bucket key). Null (the default) uses SSE-S3 (AES256), which costs nothing."
  type        = string
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days a noncurrent object version (an overwritten or deleted object) is kept before S3 expires it. Lake objects are never rewritten, so this mostly covers files that `tote lake clean` removed."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "Noncurrent versions must be kept at least 1 day."
  }
}

variable "object_lock_days" {
  description = "If above 0, creates the bucket with S3 Object Lock and a GOVERNANCE default retention of this many days (WORM lake). 0 (the default) is off. Object Lock can only be enabled when the bucket is created: changing this from 0 replaces the bucket."
  type        = number
  default     = 0
  nullable    = false

  validation {
    condition     = var.object_lock_days >= 0 && floor(var.object_lock_days) == var.object_lock_days
    error_message = "The object lock retention must be a whole number of days, 0 for none."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the bucket with everything in it (every version). Off by default: the lake is the durable record."
  type        = bool
  default     = false
  nullable    = false
}

# Iceberg

variable "iceberg_enabled" {
  description = "Publish the star as Iceberg tables in a Glue database (<name>_<environment>) that Athena reads through a workgroup of its own. False creates neither, and the publish step finds its catalog off (TOTE_ICEBERG_CATALOG=off) and does nothing."
  type        = bool
  default     = true
}

variable "iceberg_maintain_schedule" {
  description = "EventBridge Scheduler expression that runs the Iceberg tables' maintenance: the publish function invoked with the trigger maintain compacts the small files each run's snapshot adds and expires the snapshots older than iceberg_retain_hours."
  type        = string
  default     = "rate(1 day)"

  validation {
    condition     = can(regex("^(rate|cron|at)\\(.+\\)$", var.iceberg_maintain_schedule))
    error_message = "The maintenance schedule must be a rate(...), cron(...) or at(...) expression."
  }
}

variable "iceberg_retain_hours" {
  description = "How long maintenance keeps a replaced Iceberg snapshot, in hours (TOTE_ICEBERG_RETAIN): how far back \"as of batch\" time travel reaches."
  type        = number
  default     = 168

  validation {
    condition     = var.iceberg_retain_hours >= 1 && floor(var.iceberg_retain_hours) == var.iceberg_retain_hours
    error_message = "The retention must be a whole number of hours, at least 1."
  }
}

variable "athena_results_expiration_days" {
  description = "Days Athena's query results are kept (the athena-results/ prefix of the lake bucket, outside the lake)."
  type        = number
  default     = 7

  validation {
    condition     = var.athena_results_expiration_days >= 1
    error_message = "Athena results must be kept at least a day."
  }
}

variable "athena_bytes_scanned_cutoff" {
  description = "A query of the workgroup that would scan more bytes than this is cancelled (Athena bills by the byte scanned). Null for no limit."
  type        = number
  default     = 10737418240 # 10 GiB: $0.05 a query at most
}

# Secrets

variable "source_secret_name" {
  description = "Name of the Secrets Manager secret holding the totesys (source) PostgreSQL URL. Null (the default) makes <name>/source-url. Terraform creates the secret, never its value."
  type        = string
  default     = null
}

variable "warehouse_secret_name" {
  description = "Name of the Secrets Manager secret holding the warehouse PostgreSQL URL. Null (the default) makes <name>/warehouse-url. Terraform creates the secret, never its value."
  type        = string
  default     = null
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can be restored (0 deletes it at once, 7-30 otherwise). Its name stays taken during the window."
  type        = number
  default     = 7

  validation {
    condition     = var.secret_recovery_window_days == 0 || (var.secret_recovery_window_days >= 7 && var.secret_recovery_window_days <= 30)
    error_message = "The recovery window must be 0 or 7-30 days."
  }
}

# Schedule and alerts

variable "schedule" {
  description = "EventBridge Scheduler expression that starts a pipeline run; the default keeps the warehouse well inside the 30-minute freshness promise."
  type        = string
  default     = "rate(5 minutes)"
  nullable    = false

  validation {
    condition     = can(regex("^(rate|cron|at)\\(.+\\)$", var.schedule))
    error_message = "The schedule must be a rate(...), cron(...) or at(...) expression."
  }
}

variable "clean_schedule" {
  description = "EventBridge Scheduler expression that runs the clean function, which deletes the lake's uncommitted files (see docs/aws.md for its cost)."
  type        = string
  default     = "rate(1 day)"

  validation {
    condition     = can(regex("^(rate|cron|at)\\(.+\\)$", var.clean_schedule))
    error_message = "The clean schedule must be a rate(...), cron(...) or at(...) expression."
  }
}

variable "verify_schedule" {
  description = "EventBridge Scheduler expression that runs the verify function, which compares the warehouse with the source (tote verify). At least daily: the verify-missing alarm fires when two whole days pass without a verify."
  type        = string
  default     = "rate(1 day)"
  nullable    = false

  validation {
    condition     = can(regex("^(rate|cron|at)\\(.+\\)$", var.verify_schedule))
    error_message = "The verify schedule must be a rate(...), cron(...) or at(...) expression."
  }
}

variable "schedule_enabled" {
  description = "Whether the schedules start runs (the pipeline's, the clean and the verify function's). Turn it off to pause the pipeline without tearing anything down."
  type        = bool
  default     = true
}

variable "alert_email" {
  description = "Email address subscribed to the alert topic (AWS sends a confirmation mail first). Empty (the default) subscribes nobody; subscribe by hand or from another module with the topic_arn output."
  type        = string
  default     = ""

  validation {
    condition     = var.alert_email == "" || can(regex("^[^@\\s]+@[^@\\s]+$", var.alert_email))
    error_message = "The alert email must be an email address or empty."
  }
}

variable "alarm_period_seconds" {
  description = "Period of every alarm. The lag alarm fires when 2 of 3 periods have no load reporting or a lag over the threshold, so keep the period at least the schedule's interval."
  type        = number
  default     = 300

  validation {
    condition     = contains([60, 120, 180, 300, 600, 900, 1800, 3600], var.alarm_period_seconds)
    error_message = "The alarm period must be one of 60, 120, 180, 300, 600, 900, 1800 or 3600 seconds."
  }
}

# Logs

variable "log_retention_days" {
  description = "Days CloudWatch keeps the functions' and the state machine's logs."
  type        = number
  default     = 30
  nullable    = false

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "The log retention must be one of CloudWatch's values (1, 3, 5, 7, 14, 30, 60, 90, ..., 3653 days)."
  }
}

variable "state_machine_log_level" {
  description = "What the state machine logs to CloudWatch: ALL, ERROR, FATAL or OFF. Its execution history in the Step Functions console does not depend on this."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF"], var.state_machine_log_level)
    error_message = "The state machine log level must be ALL, ERROR, FATAL or OFF."
  }
}
