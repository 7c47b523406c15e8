"""Entry point of the app (sign-in, chat, admin): `erag serve`, or `streamlit run app/streamlit_app.py`."""

from app.navigation import main

main()
