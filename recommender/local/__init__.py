"""A local stand-in for a SageMaker endpoint whose saturation capacity is known exactly."""
