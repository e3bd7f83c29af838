"""After-the-call quality assurance: QA scorecard and call categorisation on a stored call."""
