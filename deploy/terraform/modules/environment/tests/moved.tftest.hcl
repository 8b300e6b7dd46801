# An environment deployed before modules/environment existed keeps every
# resource: examples/dev's moved block takes the state of module.tote to
# module.environment.module.tote. The first run applies the old root
# (testdata/before) with the mock provider; the second plans today's
# examples/dev against that same state (state_key). A resource the move
# missed would be planned afresh, its ARN unknown until apply; moved, it
# keeps the ARN the first run gave it.

mock_provider "aws" {
  source = "../tote/tests/mocks"

  # Its overrides name the tote module's own addresses; here the functions
  # are in module.tote, and the schedules want ARNs of them.
  mock_resource "aws_lambda_function" {
    defaults = {
      arn = "arn:aws:lambda:eu-west-2:123456789012:function:tote-dev-stage"
    }
  }
}

variables {
  lambda_zip = "../tote/tests/testdata/lambda.zip"
}

run "before" {
  command   = apply
  state_key = "dev"

  module {
    source = "./tests/testdata/before"
  }
}

run "after" {
  command   = plan
  state_key = "dev"

  module {
    source = "../../examples/dev"
  }

  assert {
    condition     = output.tote.state_machine_arn == run.before.tote.state_machine_arn
    error_message = "the state machine must keep its state (moved, not replaced)"
  }

  assert {
    condition     = output.tote.function_arns == run.before.tote.function_arns
    error_message = "every function must keep its state (moved, not replaced)"
  }

  assert {
    condition     = output.tote.secret_arns == run.before.tote.secret_arns && output.tote.bucket_name == run.before.tote.bucket_name
    error_message = "the secrets and the lake must keep their state (moved, not replaced)"
  }
}
