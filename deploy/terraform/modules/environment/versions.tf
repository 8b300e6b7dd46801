terraform {
  # 1.10 for the S3 backend's own state locking (use_lockfile) in the
  # environments' backend.tf.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}
