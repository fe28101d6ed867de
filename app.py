"""The web app's entry point: routes to the pages and does nothing else."""

import streamlit as st

from rag.web_login import login_gate

st.set_page_config(page_title="Ask your documents", page_icon="📚", layout="wide")
# With a login configured (rag/web_login.py), a session sees only the login page until it logs in.
st.navigation(
    login_gate([
        st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
        st.Page("pages/documents.py", title="Documents", icon=":material/folder_open:"),
        st.Page("pages/evaluation.py", title="Evaluation", icon=":material/science:"),
        st.Page("pages/monitoring.py", title="Monitoring", icon=":material/monitoring:"),
    ])
).run()
