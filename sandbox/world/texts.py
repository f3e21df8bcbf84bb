"""Subjects, titles and bodies: English, Hebrew and Arabic, a few with emoji (valid, never quarantined)."""

from __future__ import annotations

TICKET_SUBJECTS = [
    "Cannot log in to the portal", "Invoice shows the wrong amount", "Delivery is late",
    "How do I export my data?", "Request a refund", "App crashes on startup 😞", "Password reset link expired",
    "Upgrade my plan 🚀", "Question about the warranty", "Device stopped syncing", "Change billing address",
    "בעיה בהתחברות לחשבון", "החשבונית לא תקינה", "המשלוח לא הגיע", "שאלה לגבי האחריות 🙏",
    "مشكلة في الفاتورة", "لا أستطيع تسجيل الدخول", "طلب استرجاع المبلغ", "التطبيق لا يعمل 😕",
]
DEAL_PRODUCTS = [
    "Annual subscription", "Premium plan", "Onboarding package", "Hardware bundle", "Support contract",
    "Team licences", "Starter plan", "חבילת פרימיום", "מנוי שנתי", "اشتراك سنوي", "باقة الشركات",
]
MEETING_TITLES = [
    "Discovery call", "Product demo", "Quarterly check-in", "Onboarding session", "Pricing review",
    "פגישת היכרות", "הדגמת מוצר", "اجتماع متابعة", "عرض المنتج", "Kick-off 🎯",
]
CALL_TITLES = [
    "Follow-up call", "Qualification call", "Question about the offer", "Service call", "Renewal call",
    "שיחת המשך", "שיחת שירות", "مكالمة متابعة", "استفسار عن العرض",
]
EMAIL_SUBJECTS = [
    "Your quote", "Re: pricing question", "Welcome aboard", "Next steps", "Following up on our call",
    "Re: your order", "Re: support request", "הצעת מחיר", "בהמשך לשיחתנו", "عرض سعر", "بخصوص طلبك",
    "Thanks for your order 🎉",
]
FORM_NAMES = [
    "Contact us", "Webinar registration", "Newsletter signup", "Request a demo", "Download: pricing guide",
    "טופס יצירת קשר", "نموذج الاتصال",
]
NOTE_TEXTS = [
    "Customer prefers WhatsApp over email.", "Spoke with procurement, budget approved next quarter.",
    "Asked for a discount on a two-year term.", "Interested in the team plan.",
    "הלקוח ביקש שנחזור אליו בשבוע הבא.", "העדיף לקבל הצעה במייל.", "العميل مهتم بالباقة السنوية.",
    "Sent the brochure by post 📬.",
]
TASK_SUBJECTS = [
    "Send the proposal", "Call back about pricing", "Prepare the contract", "Check delivery status",
    "לשלוח הצעת מחיר", "لإرسال العقد",
]
CAMPAIGN_NAMES = [
    "Monthly newsletter", "Spring offer", "Product update", "Webinar invitation", "Customer stories",
    "ניוזלטר חודשי", "نشرة أخبارية", "Holiday greetings 🎁",
]
SURVEY_SUBJECT = "NPS survey: how likely are you to recommend us?"
REFERRAL_SUBJECTS = ["Referred a friend", "Referral: colleague interested", "הפנה חבר", "أحال صديقًا"]
REVIEW_SUBJECTS = ["Review on our site", "Google review", "ביקורת באתר", "مراجعة على الموقع"]

_LOREM = (
    "Meeting summary. The customer walked us through their current process, the systems they use and "
    "the problems they want solved. סיכום: הלקוח מעוניין בפתרון מלא. ملخص: العميل مهتم بالحل الكامل. 🚀 "
)


def long_text(length: int) -> str:
    """Exactly `length` characters of mixed-script meeting minutes."""
    return (_LOREM * (length // len(_LOREM) + 1))[:length]
