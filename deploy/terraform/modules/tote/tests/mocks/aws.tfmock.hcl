# Realistic answers for the mock AWS provider: the provider checks that ARNs
# look like ARNs, and the tests compare policies against them. Attributes not
# given here get random strings.

mock_data "aws_caller_identity" {
  defaults = {
    account_id = "123456789012"
    arn        = "arn:aws:iam::123456789012:user/test"
    user_id    = "AIDATESTTESTTESTTEST"
  }
}

mock_data "aws_region" {
  defaults = {
    name        = "eu-west-2"
    description = "Europe (London)"
    endpoint    = "ec2.eu-west-2.amazonaws.com"
  }
}

mock_data "aws_partition" {
  defaults = {
    partition          = "aws"
    dns_suffix         = "amazonaws.com"
    reverse_dns_prefix = "com.amazonaws"
  }
}

mock_resource "aws_iam_role" {
  defaults = {
    arn = "arn:aws:iam::123456789012:role/mock"
  }
}

mock_resource "aws_sns_topic" {
  defaults = {
    arn = "arn:aws:sns:eu-west-2:123456789012:tote-dev-alerts"
  }
}

mock_resource "aws_sfn_state_machine" {
  defaults = {
    arn = "arn:aws:states:eu-west-2:123456789012:stateMachine:tote-dev-pipeline"
  }
}

# Distinct ARNs where a test must tell one resource from another.

override_resource {
  target = aws_secretsmanager_secret.source
  values = {
    arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:tote/dev/source-url-AbCdEf"
  }
}

override_resource {
  target = aws_secretsmanager_secret.warehouse
  values = {
    arn = "arn:aws:secretsmanager:eu-west-2:123456789012:secret:tote/dev/warehouse-url-GhIjKl"
  }
}

override_resource {
  target = aws_lambda_function.stage["extract"]
  values = {
    arn = "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-extract"
  }
}

override_resource {
  target = aws_lambda_function.stage["transform"]
  values = {
    arn = "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-transform"
  }
}

override_resource {
  target = aws_lambda_function.stage["load"]
  values = {
    arn = "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-load"
  }
}

override_resource {
  target = aws_lambda_function.stage["clean"]
  values = {
    arn = "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-clean"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["clean"]
  values = {
    arn = "arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/tote-dev-clean"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["extract"]
  values = {
    arn = "arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/tote-dev-extract"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["transform"]
  values = {
    arn = "arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/tote-dev-transform"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["load"]
  values = {
    arn = "arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/tote-dev-load"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.state_machine
  values = {
    arn = "arn:aws:logs:eu-west-2:123456789012:log-group:/aws/vendedlogs/states/tote-dev-pipeline"
  }
}

override_resource {
  target = aws_lambda_function.stage["verify"]
  values = {
    arn = "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-verify"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["verify"]
  values = {
    arn = "arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/tote-dev-verify"
  }
}

override_resource {
  target = aws_lambda_function.stage["publish"]
  values = {
    arn = "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-publish"
  }
}

override_resource {
  target = aws_cloudwatch_log_group.function["publish"]
  values = {
    arn = "arn:aws:logs:eu-west-2:123456789012:log-group:/aws/lambda/tote-dev-publish"
  }
}

mock_resource "aws_athena_workgroup" {
  defaults = {
    arn = "arn:aws:athena:eu-west-2:123456789012:workgroup/tote-dev"
  }
}

mock_resource "aws_glue_catalog_database" {
  defaults = {
    arn = "arn:aws:glue:eu-west-2:123456789012:database/tote_dev"
  }
}
