"""Business rules; each public function is one use case and owns its transaction."""
