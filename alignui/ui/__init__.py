"""The Gradio app: one module per tab (annotate, arena, leaderboard, data, train, admin), thin callbacks over
the library, the sign-in glue (signin) and shared widgets (common). The only package that imports gradio."""
