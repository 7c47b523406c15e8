"""Entry point of the chat page: `erag serve`, or `streamlit run app/streamlit_app.py`."""

from app.chat_page import main

main()
