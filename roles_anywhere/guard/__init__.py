"""Guard any stack: the CrossGuard policy pack's rules, and running them offline on a plan."""
