"""The Gradio app's handlers, one module per group of tabs (layout stays in app.py)."""
