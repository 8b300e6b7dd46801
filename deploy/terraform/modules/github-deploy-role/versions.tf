terraform {
  # 1.6 for the module; its tests use mock_provider (1.7).
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 6.0"
    }
  }
}
