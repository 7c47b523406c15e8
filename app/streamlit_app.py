"""Entry point of the app (sign-in, chat, admin): `erag serve`, or `streamlit run app/streamlit_app.py`."""

from erag.home import restrict_new_files

restrict_new_files()  # also when started with `streamlit run`: uploads, chat database and index stay owner-only

from app.navigation import main  # noqa: E402 - after the umask, so nothing is created before it

main()
