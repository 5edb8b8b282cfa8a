"""The request pipeline: every stage a data-plane request passes through, in order."""
