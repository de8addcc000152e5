"""For sweeps that condense again: the test split scored at every validation checkpoint of a training."""

import skeleton.method.tuning as tuning
from skeleton.core.evaluation import evaluate


def scoring_test_at_checkpoints(workspace) -> list[dict]:
    """Make every validation checkpoint of ``tuning.train_prompt`` also score ``workspace.test`` (reported only:
    the checkpoint kept is still chosen on validation). Returns the list each checkpoint's
    ``{"validation_accuracy", "test_accuracy"}`` is appended to, in order."""
    checkpoints, validate = [], tuning._validate

    def validate_and_test(classifier, validation, device, config, pad_token_id):
        accuracy, predictions = validate(classifier, validation, device, config, pad_token_id)
        test = evaluate(classifier, workspace.test, device, config.eval_batch_size, pad_token_id)["accuracy"]
        checkpoints.append({"validation_accuracy": accuracy, "test_accuracy": test})
        return accuracy, predictions

    tuning._validate = validate_and_test
    return checkpoints
