# The lake bucket: private, versioned, encrypted, optionally write-once.

resource "aws_s3_bucket" "lake" {
  bucket        = local.bucket_name
  force_destroy = var.force_destroy

  # Can only be set when the bucket is created; changing it replaces the bucket.
  object_lock_enabled = var.object_lock_days > 0

  lifecycle {
    precondition {
      condition     = length(local.bucket_name) <= 63
      error_message = "The lake bucket's name ${local.bucket_name} is longer than S3's 63 characters: shorten name or environment, or set bucket_name."
    }
  }

  tags = local.tags
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    object_ownership = "BucketOwnerEnforced" # no ACLs: IAM alone decides access
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket = aws_s3_bucket.lake.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    # One data key per bucket instead of one KMS call per object.
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    id     = "tidy"
    status = "Enabled"

    filter {}

    # A crashed multipart upload leaves invisible, billed parts behind.
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }

    # Lake objects are never rewritten, so noncurrent versions are files that
    # `tote lake clean` deleted; keep them a while, then let them go.
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }

    expiration {
      expired_object_delete_marker = true
    }
  }

  # Athena's query results are throwaway copies: gone after a week.
  rule {
    id     = "athena-results"
    status = "Enabled"

    filter {
      prefix = "athena-results/"
    }

    expiration {
      days = var.athena_results_expiration_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  # Lifecycle rules on a versioned bucket need versioning to exist first.
  depends_on = [aws_s3_bucket_versioning.lake]
}

resource "aws_s3_bucket_object_lock_configuration" "lake" {
  count = var.object_lock_days > 0 ? 1 : 0

  bucket = aws_s3_bucket.lake.id

  # Bucket-wide: every object version written is retained this long. GOVERNANCE
  # lets a principal with s3:BypassGovernanceRetention remove it early; none of
  # tote's roles has that permission.
  rule {
    default_retention {
      mode = "GOVERNANCE"
      days = var.object_lock_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.lake]
}

# Refuse plain HTTP.
resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [local.bucket_arn, "${local.bucket_arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  # Applying a bucket policy while public access settings change races.
  depends_on = [aws_s3_bucket_public_access_block.lake]
}
