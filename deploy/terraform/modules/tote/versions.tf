terraform {
  # 1.6 for the module itself; its tests (tests/*.tftest.hcl) use mock_provider,
  # which needs 1.7.
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}
