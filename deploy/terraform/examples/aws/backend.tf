# Remote state. Without a backend, state stays in terraform.tfstate here, which
# is fine for a first try and wrong for a team or CI. To keep it in S3:
#
# 1. Create a versioned, private bucket for state, once per account:
#
#      aws s3api create-bucket --bucket tote-tfstate-ACCOUNT_ID --region eu-west-2 \
#        --create-bucket-configuration LocationConstraint=eu-west-2
#      aws s3api put-bucket-versioning --bucket tote-tfstate-ACCOUNT_ID \
#        --versioning-configuration Status=Enabled
#      aws s3api put-public-access-block --bucket tote-tfstate-ACCOUNT_ID \
#        --public-access-block-configuration \
#        BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
#
#    (in us-east-1 leave out --create-bucket-configuration).
#
# 2. Uncomment the block below with that bucket's name, and run
#    `terraform init -migrate-state`. The lock file in the bucket
#    (use_lockfile) keeps two applies from running at once; no DynamoDB table.
#
# One state per environment: give each its own key (tote/dev.tfstate). CI
# deploys ../dev and ../prod instead, whose backend.tf fix the key
# (.github/workflows/deploy.yml).
#
# terraform {
#   backend "s3" {
#     bucket       = "tote-tfstate-ACCOUNT_ID"
#     key          = "tote/dev.tfstate"
#     region       = "eu-west-2"
#     encrypt      = true
#     use_lockfile = true
#   }
# }

# 1.10 for the S3 backend's own state locking (use_lockfile) above; the AWS
# provider's version is the tote module's (modules/tote/versions.tf).
terraform {
  required_version = ">= 1.10"
}
