"""The block list and the unsubscribe list: may this address be contacted?"""
